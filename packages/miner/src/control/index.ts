/**
 * The miner control app: a loopback web page and API, signed in with a local token, to start,
 * pause, resume and stop the miner and set when it may work. `startControlApp` wires the
 * token, the controller and the server; `cgn miner` starts it unless `--no-control`.
 */
import { availableParallelism } from 'node:os';
import type { Miner } from '../miner.js';
import { MinerController } from './controller.js';
import { startControlServer } from './server.js';
import { settingsFileFor } from './settings.js';
import type { ChainConfig } from './earnings.js';
import type { LogRing } from './log-ring.js';
import { loadOrCreateToken, tokenFileFor } from './token.js';

export { MinerController, ControlActionError, type ControlStatus, type ControlState } from './controller.js';
export { tokenFileFor, loadOrCreateToken, tokenMatches } from './token.js';
export { LogRing, teeLogger } from './log-ring.js';
export { settingsFileFor, parseSettings, SettingsError, DEFAULT_SETTINGS, type ControlSettings } from './settings.js';

/** The default control port; when it is taken, any free port (the URL is printed either way). */
export const DEFAULT_CONTROL_PORT = 7790;

export interface ControlAppOptions {
  miner: Miner;
  restart: () => Promise<Miner>;
  /** The miner's key file: the token and settings files sit next to it. */
  keyFile: string;
  /** Port on 127.0.0.1; default DEFAULT_CONTROL_PORT (else any free one); 0: any free port. */
  port?: number | undefined;
  payoutAddress?: string | undefined;
  /** The ring the miner's logger writes to (see `teeLogger`). */
  logs?: LogRing;
  /** Where to read the payout address's tokens, stake and claims (`--chain-rpc`, `--contracts`). */
  chain?: ChainConfig | null;
  tickMs?: number;
}

export interface ControlApp {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** The URL that signs in with a click: the token rides in the fragment, never sent to a server. */
  signInUrl: string;
  tokenFile: string;
  settingsFile: string;
  controller: MinerController;
  close(): Promise<void>;
}

export async function startControlApp(o: ControlAppOptions): Promise<ControlApp> {
  const tokenFile = tokenFileFor(o.keyFile);
  const token = loadOrCreateToken(tokenFile);
  const settingsFile = settingsFileFor(o.keyFile);
  const controller = new MinerController({
    miner: o.miner, restart: o.restart, settingsFile, cpus: availableParallelism(), payoutAddress: o.payoutAddress, chain: o.chain ?? null,
    ...(o.logs !== undefined ? { logs: o.logs } : {}),
    ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
  });
  const wanted = o.port ?? DEFAULT_CONTROL_PORT;
  let server;
  try {
    server = await startControlServer({ controller, token, port: wanted });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || o.port !== undefined) throw err;
    server = await startControlServer({ controller, token, port: 0 });
  }
  controller.start();
  return {
    url: server.url,
    signInUrl: `${server.url}#token=${token}`,
    tokenFile,
    settingsFile,
    controller,
    close: async () => {
      controller.close();
      await server.close();
    },
  };
}
