/**
 * Maps a failure reported by libvips while it decodes or processes request data to a typed
 * error. Failures of building a pipeline (thrown synchronously by sharp for bad arguments) are
 * bugs and are not mapped.
 */
import { BadImageError, ImageTooLargeError, ProcessingTimeoutError, type MediaGenError } from './errors.js';

/** `subject` names the data in the message, e.g. "image" or "watermark image". */
export function fromSharpError(err: unknown, subject: string, limits: { maxPixels: number; timeoutSeconds: number }): MediaGenError {
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes('exceeds pixel limit')) {
    return new ImageTooLargeError(`the ${subject} has more than ${limits.maxPixels} pixels, the limit of this instance`);
  }
  if (/^timeout\b/i.test(message)) {
    return new ProcessingTimeoutError(`processing the ${subject} took longer than ${limits.timeoutSeconds} s and was stopped`);
  }
  if (message.includes('unsupported image format')) {
    return new BadImageError(`the ${subject} is not in a supported image format`);
  }
  return new BadImageError(`the ${subject} could not be decoded (corrupt or truncated?): ${message.split('\n')[0]}`);
}
