/**
 * `cgn node keys` on a keys file, and the store a node verifies with: keys added, listed and
 * revoked in the file reach a running store within its reload check.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileApiKeyStore, hashApiKey } from './auth/api-keys.js';
import { runNodeKeysFromArgs } from './keys-cli.js';

function cli(cwd: string) {
  return (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = runNodeKeysFromArgs(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, cwd });
    return { code, out, err };
  };
}

describe('cgn node keys', () => {
  it('adds a key (shown once, stored hashed, 0600), lists it, revokes it by id or its start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-keys-'));
    try {
      const keys = cli(dir);
      expect(keys('list', '--data-dir', 'node').out).toContain('no keys in');
      const add = keys('add', '--account', 'acme', '--name', 'backend', '--data-dir', 'node', '--json');
      expect(add.code, add.err).toBe(0);
      const made = JSON.parse(add.out) as { key: string; id: string; file: string };
      expect(made.file).toBe(join(dir, 'node', 'api-keys.json'));
      const raw = readFileSync(made.file, 'utf8');
      expect(raw).not.toContain(made.key);
      expect(raw).toContain(hashApiKey(made.key));
      expect(statSync(made.file).mode & 0o777).toBe(0o600);
      expect(new FileApiKeyStore(made.file).verify(made.key)).toEqual({ account: 'acme', keyId: made.id });

      const list = keys('list', '--keys', 'node/api-keys.json');
      expect(list.out).toMatch(new RegExp(`^ID +ACCOUNT +NAME +CREATED +REVOKED\\n${made.id} +acme +backend +\\d{4}-`));
      expect(list.out).not.toContain(hashApiKey(made.key));

      const unknown = keys('revoke', 'cgn_nope', '--data-dir', 'node');
      expect(unknown.code).toBe(1);
      expect(unknown.err).toContain(`no key with id "cgn_nope"; the keys are: ${made.id}`);
      const rev = keys('revoke', made.id.slice(0, 8), '--data-dir', 'node');
      expect(rev.code, rev.err).toBe(0);
      expect(rev.out).toContain(`revoked key ${made.id} (account acme)`);
      expect(new FileApiKeyStore(made.file).verify(made.key)).toBeNull();
      expect(keys('list', '--data-dir', 'node', '--json').out).toMatch(/"revokedAt":"\d{4}-/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says what is missing or wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-keys-'));
    try {
      const keys = cli(dir);
      expect(keys('add').err).toContain('add needs --account NAME');
      expect(keys('add', '--account', 'a b').err).toContain('--account "a b"');
      expect(keys().err).toContain('give a command: add, list or revoke');
      expect(keys('list', '--keys', 'k.json', '--data-dir', 'd').code).toBe(2);
      expect(keys('revoke').err).toContain('revoke takes one key ID');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a store in use picks up keys added and revoked by another process within its reload check', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-keys-'));
    try {
      const file = join(dir, 'api-keys.json');
      let now = 0;
      const running = new FileApiKeyStore(file, () => now);
      const { key, id } = JSON.parse(cli(dir)('add', '--account', 'acme', '--keys', file, '--json').out) as { key: string; id: string };
      expect(running.verify(key)).toBeNull(); // read before the key was added, checked again after a second
      now += 1000;
      expect(running.verify(key)?.account).toBe('acme');
      expect(cli(dir)('revoke', id, '--keys', file).code).toBe(0);
      expect(running.verify(key)).not.toBeNull(); // within the second: still the keys it read
      now += 1000;
      expect(running.verify(key)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
