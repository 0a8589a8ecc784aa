#!/usr/bin/env node
/**
 * The bench's `relay` way: CGN's hops with none of its work. A front process (where the node sits)
 * takes HTTP, a back process (where the miner sits) holds one TCP connection to it and the
 * DService link (the same unix socket and frames a miner uses) to the DService. Bodies go through
 * as they came, no authentication, no broker, no tunnel codec, no hashing, no ledger.
 *
 * What CGN adds over this is what CGN's own work costs; what this adds over direct is the price of
 * the process layout (two more processes on the path, each woken from idle, each copying the body
 * through the kernel), which no code inside those processes can remove.
 *
 *   node bench/relay.mjs front <http port> <relay port>     (prints a line once the relay port listens;
 *                                                          takes HTTP once the back has connected)
 *   node bench/relay.mjs back <relay port> <link socket>
 */
import http from 'node:http';
import net from 'node:net';
import { LINK_REQUEST, LINK_RESPONSE, LinkFrameReader, LinkWriter } from '@cgn/sdk';

const MAX_FRAME = 64 * 1024 * 1024;
const [role, a, b] = process.argv.slice(2);

function front(httpPort, relayPort) {
  const waiting = new Map();
  let nextId = 1;
  const relay = net.createServer((socket) => {
    relay.close();
    socket.setNoDelay(true);
    const writer = new LinkWriter(socket, { writeAtOnceWhenQuietMs: 1 });
    const reader = new LinkFrameReader(MAX_FRAME, (f) => {
      const res = waiting.get(f.id);
      if (res === undefined || f.kind !== LINK_RESPONSE) return;
      waiting.delete(f.id);
      const meta = JSON.parse(f.meta);
      res.writeHead(meta.s, meta.h);
      res.end(f.body);
    });
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('close', () => process.exit(0));
    http
      .createServer((req, res) => {
        const chunks = [];
        let length = 0;
        req.on('data', (c) => {
          chunks.push(c);
          length += c.length;
        });
        req.on('end', () => {
          const id = nextId++;
          waiting.set(id, res);
          const h = [];
          for (let i = 0; i < req.rawHeaders.length; i += 2) {
            const name = req.rawHeaders[i].toLowerCase();
            if (name === 'content-type' || name.startsWith('x-')) h.push(name, req.rawHeaders[i + 1]);
          }
          writer.write(LINK_REQUEST, id, JSON.stringify({ m: req.method, u: req.url, h }), { chunks, length });
        });
      })
      .listen(httpPort, '127.0.0.1');
  });
  relay.listen(relayPort, '127.0.0.1', () => console.log('listening'));
}

function back(relayPort, linkSocket) {
  const ds = net.connect(linkSocket);
  const up = net.connect(relayPort, '127.0.0.1');
  up.setNoDelay(true);
  const toDs = new LinkWriter(ds, { writeAtOnceWhenQuietMs: 1 });
  const toFront = new LinkWriter(up, { writeAtOnceWhenQuietMs: 1 });
  const fromFront = new LinkFrameReader(MAX_FRAME, (f) => toDs.write(f.kind, f.id, f.meta, f.body));
  const fromDs = new LinkFrameReader(MAX_FRAME, (f) => toFront.write(f.kind, f.id, f.meta, f.body));
  up.on('data', (c) => fromFront.push(c));
  ds.on('data', (c) => fromDs.push(c));
  for (const s of [up, ds]) s.on('close', () => process.exit(0));
}

if (role === 'front') front(Number(a), Number(b));
else if (role === 'back') back(Number(a), b);
else {
  console.error('usage: relay.mjs front <http port> <relay port> | back <relay port> <link socket>');
  process.exit(2);
}
