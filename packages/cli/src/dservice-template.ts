/**
 * The files of a new DService (`cgn dservice init`): plain JavaScript modules, so a miner runs the
 * package as it is (no build step), typed for editors through JSDoc and the SDK's types. The
 * handler is its own module so its test calls it directly as well as over HTTP.
 */

export interface TemplateInput {
  name: string;
  /** `file:` spec of the SDK, relative to the new package (what `npm install ../sdk` writes). */
  sdkSpec: string;
  /** dservice.json's JSON Schema, relative to the new package (for editors). */
  schemaPath: string;
}

export function dserviceTemplate(t: TemplateInput): Record<string, string> {
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  return {
    'package.json': json({
      name: t.name,
      version: '0.1.0',
      private: true,
      type: 'module',
      main: 'server.js',
      scripts: { start: 'node server.js', test: 'node --test' },
      dependencies: { '@cgn/sdk': t.sdkSpec },
    }),
    'dservice.json': json({
      $schema: t.schemaPath,
      name: t.name,
      version: '0.1.0',
      entry: 'server.js',
      deterministic: true,
      resources: { cpus: 1, memoryMb: 128 },
      maxBodyBytes: 1048576,
      concurrency: 16,
      timeouts: { requestMs: 10000 },
    }),
    'handler.js': `// @ts-check
/**
 * What ${t.name} answers. A DService is a stateless HTTP service: each request comes in whole
 * (method, path below /v1/d/${t.name}, query, headers, body as bytes) and gets one answer.
 *
 *   GET  /hello?name=Ada   {"greeting":"Hello, Ada!"}
 *   POST /upper            the body, upper-cased (text)
 */
import { problem } from '@cgn/sdk';

/**
 * @param {import('@cgn/sdk').DServiceRequest} req
 * @returns {Promise<import('@cgn/sdk').DServiceResponse>}
 */
export async function handle(req) {
  if (req.method === 'GET' && req.path === '/hello') {
    const name = req.query.get('name') ?? 'world';
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ greeting: \`Hello, \${name}!\` }) };
  }
  if (req.method === 'POST' && req.path === '/upper') {
    return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: req.body.toString('utf8').toUpperCase() };
  }
  // An answer in the 4xx range is still work done (and billed); say what would have worked.
  return problem(404, 'Not Found', \`no \${req.method} \${req.path}: try GET /hello?name=Ada or POST /upper\`);
}
`,
    'server.js': `// @ts-check
/**
 * ${t.name}'s process: a miner starts it with \`node server.js\` in a sandbox and talks to it over
 * the unix socket in $CGN_SOCKET; run on its own it listens on 127.0.0.1:$PORT.
 */
import { serveDService } from '@cgn/sdk';
import { handle } from './handler.js';

const running = await serveDService(handle);
process.stderr.write(\`${t.name} dservice listening on \${running.address}\\n\`);
`,
    'test/handler.test.js': `// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDService } from '@cgn/sdk';
import { handle } from '../handler.js';

/** @param {Partial<import('@cgn/sdk').DServiceRequest>} over */
const request = (over) => ({ method: 'GET', path: '/', query: new URLSearchParams(), headers: {}, body: Buffer.alloc(0), ...over });

test('greets by name', async () => {
  const r = await handle(request({ path: '/hello', query: new URLSearchParams('name=Ada') }));
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(String(r.body)), { greeting: 'Hello, Ada!' });
});

test('an unknown path is a 404 that says what works', async () => {
  const r = await handle(request({ path: '/nope' }));
  assert.equal(r.status, 404);
  assert.match(String(r.body), /try GET \\/hello/);
});

test('answers over HTTP the way a miner calls it', async () => {
  const running = await serveDService(handle, { port: 0 });
  try {
    const res = await fetch(\`\${running.address}/upper\`, { method: 'POST', body: 'hello' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'HELLO');
    assert.equal((await fetch(\`\${running.address}/healthz\`)).status, 200);
  } finally {
    await running.close();
  }
});
`,
    'README.md': `# ${t.name}

A CGN DService made with \`cgn dservice init\`. \`handler.js\` answers requests; \`server.js\`
serves it with the SDK's \`serveDService\`; \`dservice.json\` describes it to nodes and miners
(its fields: the JSON Schema named in its \`$schema\`).

    npm test                                  # the handler, directly and over HTTP
    PORT=8000 npm start                       # on its own: curl 'http://127.0.0.1:8000/hello?name=Ada'

Run it on the network: a miner offers it (\`cgn miner --node URL --dservice .\`), the DService is
registered and approved at central (\`cgn dservice register --dir .\`, then an administrator's
\`cgn dservice approve ${t.name}@0.1.0\`), and a DApp calls
\`POST <work endpoint>/v1/d/${t.name}/upper\`. A new package (any change to its files) needs a
new \`version\`, since miners and central match the package by its digest.
`,
  };
}
