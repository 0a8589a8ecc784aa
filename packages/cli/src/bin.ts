#!/usr/bin/env node
/**
 * The `cgn` command. Each command loads only the packages it uses: a miner or a node process
 * does not load central's web server or the chain client (seconds of start-up on a busy machine,
 * and `cgn dev` starts several of them).
 */

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
    await (await import('./dev.js')).runDevFromArgs(rest);
    break;
  case 'node':
    await (await import('@cgn/node/main')).runNodeFromArgs(rest);
    break;
  case 'central':
    await (await import('@cgn/central')).runCentralFromArgs(rest);
    break;
  case 'account':
    await (await import('@cgn/central')).runAccountFromArgs(rest);
    break;
  case 'dservice':
    if (rest[0] === 'init') {
      process.exitCode = await (await import('./dservice-init.js')).runDServiceInitFromArgs(rest.slice(1));
      break;
    }
    await (await import('@cgn/central')).runDServiceFromArgs(rest, undefined, { digestPackage: (await import('@cgn/miner')).digestPackage });
    break;
  case 'ledger': {
    const { centralAccounts } = await import('./central-accounts.js');
    // Logged in to central: account arguments are checked against (and names looked up at) central.
    process.exitCode = await (await import('@cgn/ledger')).runLedgerFromArgs(rest, {}, {
      centralAccounts: () =>
        centralAccounts().catch((err: unknown) => {
          // A session whose central is down or expired: said, then the ledger's own rules apply.
          process.stderr.write(`cgn ledger: not checking accounts at central: ${(err as Error).message}\n`);
          return null;
        }),
    });
    break;
  }
  case 'wallet':
    process.exitCode = await (await import('@cgn/chain')).runWalletFromArgs(rest);
    break;
  case 'explain':
    process.exitCode = await (await import('./explain.js')).runExplainFromArgs(rest);
    break;
  case 'epoch':
    process.exitCode = await (await import('./epoch.js')).runEpochFromArgs(rest);
    break;
  case 'settle':
    process.exitCode = await (await import('@cgn/chain')).runSettleFromArgs(rest);
    break;
  case 'miner':
    if (rest[0] === 'register') {
      await (await import('@cgn/central')).runMinerRegisterFromArgs(rest.slice(1));
      break;
    }
    if (rest[0] === 'grant') {
      await (await import('@cgn/central')).runMinerGrantFromArgs(rest.slice(1));
      break;
    }
    {
      const { MINER_DEFAULTS, runMinerFromArgs } = await import('@cgn/miner');
      // --payout-address new: a wallet made (or reused) next to the miner key, its address used
      // (the chain's wallet code is loaded only then).
      let args: string[] = rest;
      try {
        if (rest.some((a) => a === 'new' || a === '--payout-address=new')) args = (await import('./miner-payout.js')).resolvePayoutNew(rest, MINER_DEFAULTS.keyFile, (l) => void process.stderr.write(`${l}\n`));
      } catch (err) {
        process.stderr.write(`cgn miner: --payout-address new: ${(err as Error).message}\n`);
        process.exit(1);
      }
      // A miner with no --dservice runs what the node places on it (packages fetched from the node).
      await runMinerFromArgs(args);
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
