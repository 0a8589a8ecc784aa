/**
 * Bounded, escaped excerpts of what a peer sent, for error frames, problem details and log lines.
 * A peer's text never reaches a log or another peer whole: it is cut to a bound and every
 * character that is not printable ASCII is escaped, so no control character, terminal escape or
 * multi-megabyte string passes through. Never throws, whatever the value.
 */

/** Default bound for a log line's excerpt of peer text, characters. */
export const LOG_EXCERPT_CHARS = 200;

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (ch === '\\') return '\\\\';
  if (code === 0x0a) return '\\n';
  if (code === 0x0d) return '\\r';
  if (code === 0x09) return '\\t';
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with non-printable-ASCII characters escaped and cut to at most `max` characters
 * (including a `…(+N)` marker that says how much was left out).
 */
export function excerpt(text: string, max: number = LOG_EXCERPT_CHARS): string {
  const limit = Math.max(16, max);
  const whole = escapedPrefix(text, limit);
  if (whole.taken === text.length) return whole.out;
  // It does not fit: cut shorter, leaving room for the marker.
  const cut = escapedPrefix(text, limit - 12);
  return `${cut.out}…(+${text.length - cut.taken})`;
}

/** The longest escaped prefix of `text` of at most `budget` characters, and how many characters of `text` it holds. */
function escapedPrefix(text: string, budget: number): { out: string; taken: number } {
  let out = '';
  let i = 0;
  for (; i < text.length; i++) {
    const ch = text[i]!;
    const code = ch.charCodeAt(0);
    const piece = code >= 0x20 && code < 0x7f && ch !== '\\' ? ch : escapeChar(ch);
    if (out.length + piece.length > budget) break;
    out += piece;
  }
  return { out, taken: i };
}

/** A short, safe description of any decoded value (for "got X" in an error message). */
export function describeValue(value: unknown, max = 40): string {
  try {
    if (value === null) return 'null';
    if (value instanceof Uint8Array) return `${value.length} bytes`;
    if (Array.isArray(value)) return `a list of ${value.length}`;
    switch (typeof value) {
      case 'string':
        return JSON.stringify(excerpt(value, max));
      case 'number':
      case 'boolean':
      case 'bigint':
        return excerpt(String(value), max);
      case 'undefined':
        return 'nothing';
      default:
        return `a ${typeof value}`;
    }
  } catch {
    return 'an unreadable value';
  }
}
