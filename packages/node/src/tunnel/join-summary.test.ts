import { describe, expect, it } from 'vitest';
import { JoinSummary } from './join-summary.js';

describe('JoinSummary', () => {
  it('logs one line per interval with joins and leaves, and nothing for a quiet one', () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    let connected = 0;
    const s = new JoinSummary({ info: ((fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg })) as never }, () => connected, 5000);
    for (let i = 0; i < 1000; i++) s.joined();
    s.left();
    connected = 999;
    s.flush();
    s.flush();
    expect(lines).toEqual([{ fields: { joined: 1000, left: 1, connected: 999, overMs: 5000 }, msg: 'miners joined and left' }]);
    s.left();
    s.stop(); // says what is left unsaid
    expect(lines[1]?.fields).toMatchObject({ joined: 0, left: 1 });
  });
});
