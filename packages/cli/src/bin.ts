#!/usr/bin/env node
/**
 * The `cgn` command.
 */
import { runNodeFromArgs } from '@cgn/node';
import { runMinerFromArgs } from '@cgn/miner';
import { runDevFromArgs } from './dev.js';
import { dserviceDir } from './paths.js';

const USAGE = `Usage: cgn <command> [options]

Commands:
  dev      run the whole local network: a node, several miners with MediaGen, the ledger
  node     run a regional node
  miner    run a miner that dials a node and runs DServices
  help     show this help

Run "cgn <command> --help" for the options of a command.
`;

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'dev':
    await runDevFromArgs(rest);
    break;
  case 'node':
    await runNodeFromArgs(rest);
    break;
  case 'miner':
    // From a checkout, a miner with no --dservice runs the bundled MediaGen and echo.
    await runMinerFromArgs(
      rest.includes('--dservice') || rest.includes('--help') || rest.includes('-h')
        ? rest
        : [...rest, '--dservice', dserviceDir('mediagen'), '--dservice', dserviceDir('echo')],
    );
    break;
  case undefined:
  case 'help':
  case '--help':
  case '-h':
    process.stdout.write(USAGE);
    break;
  default:
    process.stderr.write(`cgn: unknown command "${command}"\n\n${USAGE}`);
    process.exit(2);
}
