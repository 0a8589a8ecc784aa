/**
 * Process-wide libvips settings, chosen for many small requests on a small shared machine.
 *
 * - `concurrency(1)`: one libvips worker thread per image. Parallelism comes from requests
 *   instead: sharp runs each pipeline on the libuv thread pool (4 threads, matching the
 *   descriptor's `concurrency` of 4), and a miner may run several MediaGen processes. Measured on
 *   2 cores, 1200x900 JPEG -> 400 px WebP: one request at a time takes the same ~22 ms with 1 or
 *   2 threads, and 4 requests in parallel run at 83 req/s with 1 thread against 77 with 2.
 *   It is also needed for determinism: AVIF bytes depend on the number of encoder threads, and
 *   sharp's default depends on the machine (cores, allocator).
 * - `cache(false)`: every request brings a new buffer, so libvips' operation cache never hits
 *   across requests; it would only hold memory (up to 50 MB) in a 512 MB sandbox.
 */
import sharp from 'sharp';

let configured = false;

export function configureSharp(): void {
  if (configured) return;
  configured = true;
  sharp.concurrency(1);
  sharp.cache(false);
}
