#!/usr/bin/env node
/**
 * Light-load latency, each way one request at a time over its own keep-alive connection, the ways
 * alternating request by request (direct, CGN, direct, ...). Run by bench/run.mjs in its own
 * process. The machine's drift (the DService's time per image moves by ±2 ms within a minute) then
 * hits every way alike, and the difference of the medians is what a way adds.
 *
 * Input (argv[2]): JSON { ways: [{ way, url, headers }], bodyFile?: string, caFile?: string, requests, warmup }.
 * Output (stdout): JSON { [way]: { p50Ms, p90Ms, requests } }.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const spec = JSON.parse(process.argv[2]);
const body = spec.bodyFile ? readFileSync(spec.bodyFile) : Buffer.from('hello, cgn');

const ca = spec.caFile ? readFileSync(spec.caFile) : undefined;

function once(agent, url, headers) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = (url.startsWith('https:') ? https : http).request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
        resolve(Number(process.hrtime.bigint() - start) / 1e6);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const ways = spec.ways.map((w) => ({
  ...w,
  agent: w.url.startsWith('https:') ? new https.Agent({ keepAlive: true, maxSockets: 1, ca }) : new http.Agent({ keepAlive: true, maxSockets: 1 }),
  ms: [],
}));
for (let i = 0; i < spec.warmup; i++) for (const w of ways) await once(w.agent, w.url, w.headers);
for (let i = 0; i < spec.requests; i++) for (const w of ways) w.ms.push(await once(w.agent, w.url, w.headers));
const out = {};
for (const w of ways) {
  out[w.way] = { p50Ms: Math.round(quantile(w.ms, 0.5) * 1000) / 1000, p90Ms: Math.round(quantile(w.ms, 0.9) * 1000) / 1000, requests: w.ms.length };
  w.agent.destroy();
}
process.stdout.write(JSON.stringify(out) + '\n');
