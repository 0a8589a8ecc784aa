/**
 * V8 flags for the long-running CGN processes (node, miner, central).
 *
 * Each request body the node and the miner move is a fresh Buffer outside the V8 heap. With the
 * default heap sizing, V8 counts that external memory against a limit derived from the small
 * (~25 MB) heap and starts a full mark-compact every ~15 large requests: measured on MediaGen's
 * 527 KB uploads, GC was over half of the node's and the miner's CPU per request (node 5.2 ms ->
 * 1.9 ms, miner 4.1 ms -> 1.4 ms with this flag). A larger initial old space moves that limit; it
 * reserves no memory at idle (idle RSS is unchanged).
 *
 * `--no-memory-reducer`: after a few seconds idle, V8's memory reducer shrinks the heap, and the
 * next burst of load then runs with small limits and many GCs; a network that sat idle 40 s served
 * echo at 10.8k req/s against 17k just after start, and 14-15k with the reducer off (RSS at idle
 * is the same either way, the heap being small).
 *
 * `--interrupt-budget=8192` (V8's default is 132 KB of bytecode): how much a function runs before
 * V8 considers optimizing it. A node serving ~100 MediaGen requests a second runs each of its
 * per-request functions ~100 times a second, and with the default budget most of them were still
 * in the baseline tier after 13 s: IC and call builtins were 23% of the node's CPU and 26% of the
 * miner's; 10% and 12% with this budget. Measured with two networks side by side, alternating
 * 8 s runs: node+miner CPU per MediaGen request fell in each of 4 pairs (by 0.1-0.4 ms, ~15%),
 * echo throughput rose in each of 4 pairs (by 8-48%); 4096 was no better than 8192.
 *
 * The flags must be given at start-up (`v8.setFlagsFromString` after start has no effect), so
 * `cgn dev` passes it to the processes it spawns and `bin/cgn.js` (what `npx cgn` runs) carries it in its shebang.
 */
export const SERVER_V8_FLAGS: readonly string[] = ['--initial-old-space-size=128', '--no-memory-reducer', '--interrupt-budget=8192'];

/**
 * Node arguments for a process `cgn dev` starts: the flags above, then any in `$CGN_NODE_ARGS`
 * (space-separated, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the network; Node
 * refuses profiling flags in NODE_OPTIONS).
 */
export function serverNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = (env['CGN_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a.length > 0);
  return [...SERVER_V8_FLAGS, ...extra];
}
