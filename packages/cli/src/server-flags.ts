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
 * The flags must be given at start-up (`v8.setFlagsFromString` after start has no effect), so
 * `cgn dev` passes it to the processes it spawns and `bin/cgn.js` (what `npx cgn` runs) carries it in its shebang.
 */
export const SERVER_V8_FLAGS: readonly string[] = ['--initial-old-space-size=128', '--no-memory-reducer'];

/**
 * Node arguments for a process `cgn dev` starts: the flags above, then any in `$CGN_NODE_ARGS`
 * (space-separated, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the network; Node
 * refuses profiling flags in NODE_OPTIONS).
 */
export function serverNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = (env['CGN_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a.length > 0);
  return [...SERVER_V8_FLAGS, ...extra];
}
