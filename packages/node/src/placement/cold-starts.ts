/**
 * The cold starts the node has seen (place frame sent -> instance ready), the last `size` of them,
 * for "placement under way, ready in about N s": the median, or a default before any was seen.
 */
export class ColdStarts {
  private readonly recent: number[] = [];

  constructor(private readonly defaultMs: number, private readonly size = 20) {}

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > this.size) this.recent.shift();
  }

  get count(): number {
    return this.recent.length;
  }

  /** The p50 of the recent ones, or the default. */
  estimateMs(): number {
    if (this.recent.length === 0) return this.defaultMs;
    const s = [...this.recent].sort((a, b) => a - b);
    return s[Math.floor((s.length - 1) / 2)]!;
  }

  /** The recent cold starts, oldest first (status). */
  list(): readonly number[] {
    return this.recent;
  }
}
