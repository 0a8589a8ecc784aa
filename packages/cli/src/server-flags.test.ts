import { describe, expect, it } from 'vitest';
import { SERVER_V8_FLAGS, serverNodeArgs } from './server-flags.js';

describe('serverNodeArgs', () => {
  it('is the server V8 flags, then the space-separated words of $CGN_NODE_ARGS', () => {
    expect(serverNodeArgs({})).toEqual([...SERVER_V8_FLAGS]);
    expect(serverNodeArgs({ CGN_NODE_ARGS: '  --cpu-prof   --cpu-prof-dir=/tmp/p ' })).toEqual([...SERVER_V8_FLAGS, '--cpu-prof', '--cpu-prof-dir=/tmp/p']);
  });

  it('are flags this Node accepts at start-up', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [...SERVER_V8_FLAGS, '-e', 'process.exit(0)']);
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
  });

  it('are the flags in the shebang of bin/cgn.js (what `npx cgn` runs)', async () => {
    const { readFileSync } = await import('node:fs');
    const shebang = readFileSync(new URL('../bin/cgn.js', import.meta.url), 'utf8').split('\n')[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${SERVER_V8_FLAGS.join(' ')}`);
  });
});
