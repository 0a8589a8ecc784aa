/**
 * What the benches that compare ways of serving a DService share (bench/run.mjs,
 * bench/request-cost.mjs): free ports, waiting for an HTTP answer, a DService instance as its own
 * process, the relay way (bench/relay.mjs), wrk's Lua scripts, and the child processes to stop on
 * exit.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Every process a bench started; each gets SIGTERM when the bench exits. */
export const children = [];
// SIGTERM, not SIGKILL: `cgn dev` stops the processes it started (central, node, miners) on SIGTERM;
// killed outright it would leave them running.
process.on('exit', () => children.forEach((c) => c.kill('SIGTERM')));
process.on('SIGINT', () => process.exit(130));

export function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

/** Polls `url` until it answers (any status), 10 s at most; `dispatcher` is used for https URLs. */
export async function waitHttp(url, headers = {}, dispatcher = null) {
  for (let i = 0; i < 400; i++) {
    try {
      const r = await fetch(url, { headers, ...(url.startsWith('https:') && dispatcher ? { dispatcher } : {}) });
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`bench: ${url} did not answer`);
}

/**
 * A DService instance (dservices/<name>/dist/server.js) on `port`; with `linkSocket`, also on its
 * DService link as a miner reaches it; with `tls` ({ certFile, keyFile }), serving HTTPS.
 */
export function startDService(name, port, linkSocket = null, tls = null) {
  const c = spawn(process.execPath, [join(ROOT, 'dservices', name, 'dist/server.js')], {
    env: {
      ...process.env, PORT: String(port), ...(linkSocket ? { CGN_LINK_SOCKET: linkSocket } : {}), NODE_ENV: 'production',
      ...(tls ? { CGN_DSERVICE_TLS_CERT: tls.certFile, CGN_DSERVICE_TLS_KEY: tls.keyFile } : {}),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
    cwd: join(ROOT, 'dservices', name),
  });
  children.push(c);
  return c;
}

/**
 * The `relay` way (bench/relay.mjs): CGN's process layout with none of CGN's work, in front of a
 * DService instance of its own (over its link socket, as a miner reaches it).
 */
export async function startRelay(linkSocket) {
  const { SERVER_V8_FLAGS } = await import(join(ROOT, 'packages/cli/dist/server-flags.js'));
  const [httpPort, relayPort] = [await freePort(), await freePort()];
  const script = join(ROOT, 'bench/relay.mjs');
  const front = spawn(process.execPath, [...SERVER_V8_FLAGS, script, 'front', String(httpPort), String(relayPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(front);
  // The front takes the first connection to its relay port as the back's: no probing it.
  await new Promise((res, rej) => {
    createInterface({ input: front.stdout }).once('line', res);
    front.once('exit', (code) => rej(new Error(`bench: relay front exited with ${code}`)));
  });
  const back = spawn(process.execPath, [...SERVER_V8_FLAGS, script, 'back', String(relayPort), linkSocket], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(back);
  await waitHttp(`http://127.0.0.1:${httpPort}/healthz`);
  return { port: httpPort, pids: { front: front.pid, back: back.pid }, stop: () => [front, back].forEach((c) => c.kill('SIGTERM')) };
}

/** A wrk script in `dir` POSTing the file's bytes (or a short text) with the headers. */
export function luaScript(dir, name, { bodyFile = null, headers = {} } = {}) {
  const file = join(dir, `${name}.lua`);
  const lines = ['wrk.method = "POST"'];
  if (bodyFile) lines.push(`local f = assert(io.open("${bodyFile}", "rb"))`, 'wrk.body = f:read("*all")', 'f:close()');
  else lines.push('wrk.body = "hello, cgn"');
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers["${k}"] = "${v}"`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}
