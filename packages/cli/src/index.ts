/** @cgn/cli — the `cgn` command (see bin.ts). */
export { runDevFromArgs, type DevInfo } from './dev.js';
export { REPO_ROOT, CGN_BIN, dserviceDir } from './paths.js';
export { EPOCH_USAGE, runEpochFromArgs, type EpochIo } from './epoch.js';
