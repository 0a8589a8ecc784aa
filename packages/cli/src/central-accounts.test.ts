import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { centralAccounts } from './central-accounts.js';

describe("central's accounts for cgn ledger", () => {
  let server: Server;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const staff = req.headers.authorization === 'Bearer staff';
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/accounts') {
        res.statusCode = staff ? 200 : 403;
        return void res.end(JSON.stringify(staff ? { accounts: [{ id: 'acc_1', name: 'acme', kinds: [] }, { id: 'acc_2', name: 'beta' }] } : { code: 'forbidden' }));
      }
      if (req.url === '/v1/me') return void res.end(JSON.stringify({ account: { id: 'acc_2', name: 'beta' } }));
      res.statusCode = 404;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'cgn-central-accounts-'));
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('none without a session; every account for staff; its own for an account user', async () => {
    expect(await centralAccounts(dir, {})).toBeNull();
    mkdirSync(join(dir, '.cgn'), { recursive: true });
    writeFileSync(join(dir, '.cgn', 'central-session.json'), JSON.stringify({ centralUrl: url, token: 'staff' }));
    expect(await centralAccounts(dir, {})).toEqual([{ id: 'acc_1', name: 'acme' }, { id: 'acc_2', name: 'beta' }]);
    expect(await centralAccounts(dir, { CGN_SESSION: 'user', CGN_CENTRAL_URL: url })).toEqual([{ id: 'acc_2', name: 'beta' }]);
    await expect(centralAccounts(dir, { CGN_SESSION: 'user', CGN_CENTRAL_URL: 'http://127.0.0.1:1' })).rejects.toThrow(/cannot reach central .*cgn account logout/);
  });
});
