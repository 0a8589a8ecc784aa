import { describe, expect, it } from 'vitest';
import { CgnError } from '@cgn/protocol';
import { Cancellation } from './cancellation.js';

describe('Cancellation', () => {
  it('tells its listener once, with the first reason; later cancels change nothing', () => {
    const c = new Cancellation();
    const heard: string[] = [];
    c.onCancel((r) => heard.push(r.code));
    expect(c.reason).toBeNull();
    c.cancel(new CgnError('deadline_exceeded', 'late'));
    c.cancel(new CgnError('cancelled', 'again'));
    expect(heard).toEqual(['deadline_exceeded']);
    expect(c.reason?.code).toBe('deadline_exceeded');
  });

  it('defaults to `cancelled`, and a removed listener hears nothing', () => {
    const c = new Cancellation();
    let heard = false;
    c.onCancel(() => (heard = true));
    c.onCancel(null);
    c.cancel();
    expect(heard).toBe(false);
    expect(c.reason?.code).toBe('cancelled');
  });
});
