/**
 * Where `cgn dev`'s processes serve Prometheus metrics (dev.json `metricsUrls`): the node on its
 * work port, central on its API port, each miner on a loopback port chosen here. The miners'
 * ports are picked free just before they start: a port taken in between only costs that miner
 * its metrics (it logs why and works on).
 */
import { createServer, type Server } from 'node:net';

export interface MetricsUrls {
  node: string;
  central: string | null;
  miners: string[];
}

/** `n` distinct free ports on 127.0.0.1 (all held open together, then released). */
export async function freeLoopbackPorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve));
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export const minerMetricsUrl = (port: number): string => `http://127.0.0.1:${port}/metrics`;
