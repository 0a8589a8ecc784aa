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
});
