/**
 * Echo DService: answers every request with its own body (tiny-payload benchmark and tests).
 * `GET /hello` answers "hello"; `POST /crash` exits the process (for failure tests);
 * `POST /slow?ms=N` answers after N ms; `GET /respond?status=N&header=V` answers status N with
 * header `x-echo: V` (for the tests of what a miner may send back).
 */
import { serveDService } from '@cgn/sdk';

const running = await serveDService(async (req) => {
  if (req.path === '/crash') process.exit(3);
  if (req.path === '/slow') {
    const ms = Math.min(Number(req.query.get('ms') ?? 100) || 0, 60_000);
    await new Promise((r) => setTimeout(r, ms));
  }
  if (req.path === '/respond') {
    return { status: Number(req.query.get('status') ?? 200), headers: { 'x-echo': req.query.get('header') ?? '' }, body: '' };
  }
  if (req.path === '/hello') return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hello' };
  return { status: 200, headers: { 'content-type': req.headers['content-type']?.toString() ?? 'application/octet-stream' }, body: req.body };
});
process.stderr.write(`echo dservice listening on ${running.address}\n`);
