#!/usr/bin/env node
/**
 * The `cgn` command.
 */
import { runNodeFromArgs } from '@cgn/node';
import { MINER_DEFAULTS, digestPackage, runMinerFromArgs } from '@cgn/miner';
import { resolvePayoutNew } from './miner-payout.js';
import { centralAccounts } from './central-accounts.js';
import { runSettleFromArgs, runWalletFromArgs } from '@cgn/chain';
import { runLedgerFromArgs } from '@cgn/ledger';
import { runAccountFromArgs, runCentralFromArgs, runDServiceFromArgs, runMinerGrantFromArgs, runMinerRegisterFromArgs } from '@cgn/central';
import { runDevFromArgs } from './dev.js';
import { runEpochFromArgs } from './epoch.js';
import { runExplainFromArgs } from './explain.js';
import { runDServiceInitFromArgs } from './dservice-init.js';
import { dserviceDir } from './paths.js';

const USAGE = `Usage: cgn <command> [options]

Commands:
  dev             run the whole local network: central, a node, miners with MediaGen, the ledger
  node            run a regional node
  miner           run a miner that dials a node and runs DServices
  miner register  register a miner key with central (granted the open tier)
  miner grant     grant a registered miner the dedicated tier (staff)
  central         run the Central Service (accounts, keys, registries, node selection)
  account         accounts, users, API keys, TOTP (talks to central)
  dservice        init (scaffold a new DService); register, approve and list DServices (central)
  ledger          usage, invoices, earnings, cycles, proofs, audit of the ledger
  wallet          token balance, deposits, claims, stakes, history, validators on the chain
  explain         why work of a DService would (not) run now: miners, tier, memory, queue, quotas
  epoch           service levels from the ledger and the validator election per epoch
  settle          credit escrow deposits, close cycles, anchor them on chain, post withdrawals
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
  case 'central':
    await runCentralFromArgs(rest);
    break;
  case 'account':
    await runAccountFromArgs(rest);
    break;
  case 'dservice':
    if (rest[0] === 'init') {
      process.exitCode = await runDServiceInitFromArgs(rest.slice(1));
      break;
    }
    await runDServiceFromArgs(rest, undefined, { digestPackage });
    break;
  case 'ledger':
    // Logged in to central: account arguments are checked against (and names looked up at) central.
    process.exitCode = await runLedgerFromArgs(rest, {}, { centralAccounts: () => centralAccounts() });
    break;
  case 'wallet':
    process.exitCode = await runWalletFromArgs(rest);
    break;
  case 'explain':
    process.exitCode = await runExplainFromArgs(rest);
    break;
  case 'epoch':
    process.exitCode = await runEpochFromArgs(rest);
    break;
  case 'settle':
    process.exitCode = await runSettleFromArgs(rest);
    break;
  case 'miner':
    if (rest[0] === 'register') {
      await runMinerRegisterFromArgs(rest.slice(1));
      break;
    }
    if (rest[0] === 'grant') {
      await runMinerGrantFromArgs(rest.slice(1));
      break;
    }
    {
      // --payout-address new: a wallet made (or reused) next to the miner key, its address used.
      let args: string[];
      try {
        args = resolvePayoutNew(rest, MINER_DEFAULTS.keyFile, (l) => void process.stderr.write(`${l}\n`));
      } catch (err) {
        process.stderr.write(`cgn miner: --payout-address new: ${(err as Error).message}\n`);
        process.exit(1);
      }
      // From a checkout, a miner with no --dservice runs the bundled MediaGen and echo.
      await runMinerFromArgs(
        args.includes('--dservice') || args.includes('--help') || args.includes('-h')
          ? args
          : [...args, '--dservice', dserviceDir('mediagen'), '--dservice', dserviceDir('echo')],
      );
    }
    break;
  case undefined:
  case 'help':
  case '--help':
  case '-h':
    process.stdout.write(USAGE);
    break;
  case 'version':
  case '--version':
    process.stdout.write('cgn 0.1.0\n');
    break;
  default:
    process.stderr.write(`cgn: unknown command "${command}"\n\n${USAGE}`);
    process.exit(2);
}
