/**
 * `npm start` (cgn dev) as a user runs it: the whole local network comes up, dev.json holds the
 * facts, the printed kind of request works, and Ctrl-C (SIGINT) stops every process it started.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, fetch as undiciFetch } from 'undici';
import { CGN_BIN, MEDIAGEN, tempDir, waitFor } from './harness.js';
import { swtpmMissing } from './swtpm.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The last lines of every log cgn dev wrote, and which of its processes are still alive. */
function logTails(dir: string): string {
  let out = '';
  try {
    const info = JSON.parse(readFileSync(join(dir, 'dev.json'), 'utf8')) as { pids: Record<string, number | number[] | null> };
    const live = Object.entries(info.pids).flatMap(([role, p]) => (Array.isArray(p) ? p.map((x, i) => [`${role}[${i}]`, x] as const) : [[role, p] as const]))
      .filter(([, p]) => p !== null && alive(p)).map(([role, p]) => `${role} ${p}`);
    out += `\nstill running: ${live.join(', ') || 'none'}`;
  } catch { /* no dev.json yet */ }
  try {
    for (const f of readdirSync(join(dir, 'logs'))) {
      const lines = readFileSync(join(dir, 'logs', f), 'utf8').trimEnd().split('\n');
      out += `\n--- ${f} (last ${Math.min(15, lines.length)} lines)\n${lines.slice(-15).join('\n')}`;
    }
  } catch { /* no logs yet */ }
  return out;
}

describe('cgn dev (npm start)', () => {
  it('starts central, chain, node and miners, serves work, and stops everything on SIGINT', async () => {
    const tmp = tempDir('cgn-dev-');
    const dev = spawn(process.execPath, [CGN_BIN, 'dev', '--quiet', '--dir', tmp.path, '--miners', '2', '--work-port', '0', '--miner-port', '0', '--central-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    dev.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    // Each step is bounded and says what it waited for, with cgn dev's stderr, so a slow or stuck
    // step is named instead of the whole test timing out.
    const step = <T>(what: string, p: Promise<T>, ms: number): Promise<T> =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`cgn dev: ${what} took over ${ms} ms; stderr:\n${stderr}${logTails(tmp.path)}`)), ms).unref())]);
    try {
      const ready = await step('the ready line', new Promise<Record<string, unknown>>((resolve, reject) => {
        createInterface({ input: dev.stdout! }).on('line', (l) => {
          try {
            resolve(JSON.parse(l) as Record<string, unknown>);
          } catch {
            /* not the ready line */
          }
        });
        void exited.then((code) => reject(new Error(`cgn dev exited with ${code}: ${stderr}`)));
      }), 90_000); // a quiet 2-core machine needs 15-25 s; allow for a busy one
      const info = JSON.parse(readFileSync(join(tmp.path, 'dev.json'), 'utf8')) as {
        workUrl: string; statusUrl: string; minerUrl: string; apiKey: string; apiKeys: string[]; centralUrl: string; caFile: string;
        chain: { rpcUrl: string }; pids: { dev: number; central: number; node: number; miners: number[]; settle: number; swtpm: number | null };
        attestedMiner: { minerId: string } | null; attestedNote: string;
        metricsUrls: { node: string; central: string; miners: string[] };
        minerControlUrls: string[]; minerControlTokenFiles: string[];
        dashboardUrl: string; admin: { login: string; password: string };
      };
      expect(ready['workUrl']).toBe(info.workUrl);
      expect(info.apiKey).toMatch(/^cgn_/);
      // With swtpm installed (CI installs it) one more miner runs in the attested tier; without, the banner says why.
      const tpmMissing = swtpmMissing();
      if (tpmMissing === null) expect(info.attestedMiner).not.toBeNull();
      else expect(info.attestedNote).toMatch(/^none: .*not installed/);
      expect(info.pids.miners).toHaveLength(2 + (info.attestedMiner !== null ? 1 : 0));
      // Every public path is TLS from the local CA in dev.json: nothing answers plaintext.
      expect(info.minerUrl).toMatch(/^wss:\/\//);
      expect(info.workUrl).toMatch(/^https:\/\//);
      expect(info.centralUrl).toMatch(/^https:\/\//);
      const agent = new Agent({ connect: { ca: readFileSync(info.caFile) } });
      const fetch = (url: string, init: Parameters<typeof undiciFetch>[1] = {}) => undiciFetch(url, { ...init, dispatcher: agent });
      expect((await fetch(`${info.centralUrl}/openapi.json`)).status).toBe(200);
      await expect(globalThis.fetch(`${info.centralUrl}/openapi.json`)).rejects.toThrow(); // not without the CA
      expect((await fetch(info.chain.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' })).status).toBe(200);
      const image = readFileSync(join(MEDIAGEN, 'examples', 'sample.jpg'));
      const res = await step('a MediaGen request', fetch(`${info.workUrl}mediagen/transform?width=400&format=webp`, { method: 'POST', body: image, headers: { authorization: `Bearer ${info.apiKey}` } }), 15_000);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/webp');
      // The banner's kind of curl line, with --cacert, works.
      const curl = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn('curl', ['-sS', '--cacert', info.caFile, '-H', `Authorization: Bearer ${info.apiKey}`, '--data-binary', 'hello', `${info.workUrl}echo/`], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        c.once('exit', (code) => resolve({ code, out }));
      });
      expect(curl).toEqual({ code: 0, out: 'hello' });
      // Two prepaid demo accounts, so fair shares can be tried: the second key's work is served too.
      expect(info.apiKeys).toHaveLength(2);
      expect(info.apiKeys[0]).toBe(info.apiKey);
      const second = await fetch(`${info.workUrl}echo/`, { method: 'POST', body: 'second', headers: { authorization: `Bearer ${info.apiKeys[1]}` } });
      expect([second.status, await second.text()]).toEqual([200, 'second']);
      if (info.attestedMiner !== null) {
        const status = (await (await fetch(info.statusUrl)).json()) as { minersByTier: Record<string, number> };
        expect(status.minersByTier).toMatchObject({ open: 2, attested: 1 });
        const a = await fetch(`${info.workUrl}echo/`, { method: 'POST', body: 'attested', headers: { authorization: `Bearer ${info.apiKey}`, 'cgn-tier': 'attested' } });
        expect(a.status).toBe(200);
        expect(await a.text()).toBe('attested');
      }
      // Prometheus metrics of every process (issue 17, 1): the node and central over TLS, the miners on loopback.
      expect(info.metricsUrls.node).toBe(info.workUrl.replace(/\/v1\/d\/$/, '/metrics'));
      expect(info.metricsUrls.central).toBe(`${info.centralUrl}/metrics`);
      expect(info.metricsUrls.miners).toHaveLength(info.pids.miners.length);
      const nodeMetrics = await (await fetch(info.metricsUrls.node)).text();
      expect(nodeMetrics).toMatch(/^cgn_node_requests_total\{dservice="echo",tier="open",status="200",node="node-local-1"\} [1-9]/m);
      expect(await (await fetch(info.metricsUrls.central)).text()).toMatch(/^cgn_central_node_links\{state="open"\} 1$/m);
      for (const url of info.metricsUrls.miners) {
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
        expect(await (await globalThis.fetch(url)).text()).toMatch(/^cgn_miner_connected\{miner="[0-9a-f]{16}"\} 1$/m);
      }
      // Each miner's control app (issue 17, 5): on loopback, signed in with the token in its 0600 file.
      expect(info.minerControlUrls).toHaveLength(info.pids.miners.length);
      expect(info.minerControlTokenFiles).toHaveLength(info.pids.miners.length);
      for (const [i, url] of info.minerControlUrls.entries()) {
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        expect((await globalThis.fetch(`${url}api/status`)).status).toBe(401);
        const token = readFileSync(info.minerControlTokenFiles[i]!, 'utf8').trim();
        const st = (await (await globalThis.fetch(`${url}api/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { state: string };
        expect(st.state).toBe('connected');
      }
      // Miner 1 has a payout address and the chain: its app reads its tokens and stake from there.
      const token1 = readFileSync(info.minerControlTokenFiles[0]!, 'utf8').trim();
      await waitFor(async () => {
        const st = (await (await globalThis.fetch(`${info.minerControlUrls[0]!}api/status`, { headers: { authorization: `Bearer ${token1}` } })).json()) as { earnings: { chain: { known: boolean } } };
        return st.earnings.chain.known;
      }, "miner 1's control app to read the chain");
      // The operator dashboard (issue 17, 2): central's web app, and central reading the node over TLS (the local CA) for it.
      expect(info.dashboardUrl).toBe(`${info.centralUrl}/ui/`);
      expect((await fetch(info.dashboardUrl)).headers.get('content-security-policy')).toMatch(/script-src 'self'/);
      const session = (await (await fetch(`${info.centralUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(info.admin) })).json()) as { token: string };
      await waitFor(async () => {
        const res = await fetch(`${info.centralUrl}/v1/ops/miners`, { headers: { authorization: `Bearer ${session.token}` } });
        // Polling faster than central's per-principal limit (20/s) is answered 429: wait as told.
        if (res.status === 429) {
          await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? '1') * 1000));
          return false;
        }
        const body = await res.text();
        expect(res.status, body).toBe(200);
        const r = JSON.parse(body) as { miners: { nodeId: string | null }[] };
        return r.miners.filter((m) => m.nodeId === 'node-local-1').length === info.pids.miners.length;
      }, 'central\'s dashboard to list every miner of the node', 20_000);
      const pids = [info.pids.central, info.pids.node, info.pids.settle, ...info.pids.miners, ...(info.pids.swtpm ? [info.pids.swtpm] : [])];
      dev.kill('SIGINT');
      // cgn dev kills a process that does not stop within 10 s of SIGTERM (and says which): the
      // network always ends, and a slow stop shows up here with its logs.
      expect(await step('exiting after SIGINT', exited, 60_000)).toBe(0);
      if (stderr.includes('did not stop within')) console.warn(`cgn dev had to kill a process on stop:\n${stderr}${logTails(tmp.path)}`);
      await waitFor(() => pids.every((p) => !alive(p)), 'every process of the network to exit', 15_000);
    } finally {
      if (dev.exitCode === null) dev.kill('SIGKILL');
      tmp.cleanup();
    }
  }, 240_000);
});
