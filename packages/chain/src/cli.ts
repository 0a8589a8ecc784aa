/**
 * `cgn wallet ...`: balances, deposits, claims, stakes and history of an address, from the command
 * line. The `cgn` CLI wires `runWalletFromArgs(argv)` in; it resolves to the exit code
 * (0 ok, 1 failure, 2 bad usage) and never calls `process.exit` itself.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { formatEther, formatUnits, getAddress, isAddress, parseEther, parseUnits, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { explainChainError, type ChainErrorContext } from './chain-errors.js';
import { isPrivateKey } from './clients.js';
import type { CgnContracts, ClaimInput } from './contracts.js';
import { DEFAULT_DEV_JSON, readDevChain, type DevChain } from './dev-defaults.js';
import { faucet, FaucetRefusedError, type FaucetResult } from './faucet.js';
import { createWalletFile, readWalletFile, WalletFileError } from './wallet-file.js';
import { ContractsFileError, openContracts, untilStopped } from './cli-support.js';
import { validatorSetOf, type ValidatorSet } from './validator-set.js';
import { formatValidatorSet, formatWalletView } from './wallet-format.js';
import { startWalletServer } from './wallet-http.js';
import { walletView, walletViewJson, type WalletView } from './wallet-view.js';
import { minerIdFrom, signStakeBinding } from './stake-proof.js';
import { claimableFromLedger } from './settle/claims.js';
import { openLedgerStore } from './settle/open.js';

export const WALLET_USAGE = `usage: cgn wallet <command> [options]

commands:
  new [--out FILE]        make a wallet: a new private key in a file only you can read (0600;
                          default .cgn/wallets/<address>.key, never overwritten); prints the address
  faucet --address A --amount N [--eth E]
                          LOCAL chain only (npm start's anvil, chain id 31337): give A N CGN and
                          E ETH for gas (default 1), from the dev deployer (its key from dev.json)
  transfer --to A --amount N [--eth E]
                          send N CGN (and E ETH) from the key's address to A
  balance                 tokens, ETH for gas, escrow, withdrawable, stake, unbonding, ban status
  history [ADDRESS]       balances, stake, validator candidacy, claims per cycle and every deposit,
                          withdrawal, claim, stake, unbond, slash and service level, oldest first
  validators              the validator set of --epoch N (default: the latest elected) and the
                          proposer of --round R (default 0)
  serve                   read-only HTTP API: GET /v1/wallet/{address}, /v1/validators?epoch=N,
                          /healthz on --host H (default 127.0.0.1) --port P (default 8547)
  deposit  --amount N     deposit N tokens into escrow (approves first) [--for ADDRESS]
  withdraw --amount N     withdraw N tokens of unused escrow (after the operator posted it)
  claim    --cycle ID --units U --proof 0xP1,0xP2,...
           --proofs FILE  claim one cycle, or every entry of FILE (JSON: one or a list of
                          {"cycleId", "amount" (base units), "proof": [...]}) in one transaction
  claim    --ledger PATH  claim everything the key's address is owed in the ledger's anchored
           --postgres URL cycles and has not claimed yet, in one transaction (claimMany)
  claim    --for ADDRESS  relay: claim for ADDRESS (with --ledger, --proofs or --cycle/--units/
                          --proof); the tokens go to ADDRESS, the key pays the gas and may keep
                          --fee-bps B basis points of the claim (default 0; the contract caps it
                          at 100 = 1%). cgn settle does this by default for addresses with no ETH
  stake    --amount N     stake N tokens (open tier)
  unbond   --amount N     request unbonding of N staked tokens
  unbond   --withdraw     withdraw stake whose unbonding delay has passed
  stake-proof --miner-key FILE | --miner-id HEX
                          sign, with --key, the binding of this address to a miner key; give
                          the printed address and proof to cgn miner --payout-address --stake-proof
                          (offline: no --rpc or --contracts needed)

options:
  --rpc URL               JSON-RPC endpoint (env CGN_CHAIN_RPC; default: the one in dev.json)
  --key HEX               private key that signs (env CGN_WALLET_KEY); not needed for balance/history
  --key-file FILE         the same, read from a file (as cgn wallet new writes it)
  --dev-json FILE         npm start's facts (default .cgn/dev.json, env CGN_DEV_JSON): the chain's
                          RPC URL and contracts file when not given, and the faucet's key
  --address ADDRESS       whose balance/history (default: the key's address)
  --from-block N          history: scan events from block N (default: the deployment block)
  --contracts FILE        contract addresses, as written at deployment (env CGN_CHAIN_CONTRACTS;
                          default: the one in dev.json)
  --json                  machine-readable output
  -h, --help              this text

Amounts (--amount) are in tokens (18 decimals, e.g. 12.5), --eth in ETH; claim amounts are base
units (1 CGN = 10^18), exactly as in the payout tree. A failure says what to do next (e.g. which
address lacks CGN or ETH for gas, and the faucet or transfer that fixes it).`;

export interface WalletIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env?: Record<string, string | undefined>;
  /** serve: stops the server when aborted (default: on SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

const defaultIo: WalletIo = {
  stdout: (t) => void process.stdout.write(`${t}\n`),
  stderr: (t) => void process.stderr.write(`${t}\n`),
};

class UsageError extends Error {}

const COMMANDS = new Set(['new', 'faucet', 'transfer', 'balance', 'history', 'deposit', 'withdraw', 'claim', 'stake', 'unbond', 'validators', 'serve', 'stake-proof']);
const READ_ONLY = new Set(['balance', 'history', 'validators', 'serve']);
const DECIMALS = 18;

function tokens(v: string | undefined, what = '--amount'): bigint {
  if (v === undefined) throw new UsageError(`${what} is required`);
  if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`${what} must be a positive number of tokens, got "${v}"`);
  const n = parseUnits(v, DECIMALS);
  if (n <= 0n) throw new UsageError(`${what} must be more than 0`);
  return n;
}

function eth(v: string, what = '--eth'): bigint {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`${what} must be a non-negative number of ETH, got "${v}"`);
  return parseEther(v);
}

function addressOpt(v: unknown, what: string): Address {
  if (typeof v !== 'string') throw new UsageError(`${what} ADDRESS is required`);
  if (!isAddress(v)) throw new UsageError(`${what} "${v}" is not an address (0x and 40 hex digits)`);
  return getAddress(v);
}

function units(v: unknown, what: string): bigint {
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^\d+$/.test(s)) throw new UsageError(`${what} must be a whole number of base units`);
  return BigInt(s);
}

function proofList(v: unknown, what: string): Hex[] {
  const list = typeof v === 'string' ? (v === '' ? [] : v.split(',')) : v;
  if (!Array.isArray(list)) throw new UsageError(`${what} must be a list of 32-byte hex values`);
  return list.map((p) => {
    if (typeof p !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(p.trim())) throw new UsageError(`${what}: "${String(p)}" is not 32-byte hex`);
    return p.trim() as Hex;
  });
}

function readClaims(file: string): ClaimInput[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read --proofs ${file}: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (list.length === 0) throw new UsageError(`--proofs ${file} has no claims`);
  return list.map((o: unknown, i) => {
    const r = (o ?? {}) as Record<string, unknown>;
    return { cycleId: units(r.cycleId ?? r.cycle, `claim ${i} cycleId`), amount: units(r.amount, `claim ${i} amount`), proof: proofList(r.proof, `claim ${i} proof`) };
  });
}

const fmt = (n: bigint) => `${formatUnits(n, DECIMALS)} CGN`;

function optUint(v: unknown, what: string): bigint | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) throw new UsageError(`${what} must be a non-negative integer, got "${String(v)}"`);
  return BigInt(v);
}

/** Serves the read-only HTTP API until the signal (default: SIGINT/SIGTERM). */
async function serve(c: CgnContracts, host: string, port: number, io: WalletIo): Promise<void> {
  const server = await startWalletServer({ client: c.clients.public, addresses: c.addresses }, { host, port });
  io.stdout(JSON.stringify({ url: server.url, wallet: `${server.url}/v1/wallet/{address}`, validators: `${server.url}/v1/validators` }));
  await untilStopped(io.signal);
  await server.close();
}
const jsonOut = (o: unknown) => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);

export async function runWalletFromArgs(argv: readonly string[], io: WalletIo = defaultIo): Promise<number> {
  const env = io.env ?? process.env;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        rpc: { type: 'string' },
        key: { type: 'string' },
        address: { type: 'string' },
        contracts: { type: 'string' },
        amount: { type: 'string' },
        for: { type: 'string' },
        cycle: { type: 'string' },
        units: { type: 'string' },
        proof: { type: 'string' },
        proofs: { type: 'string' },
        ledger: { type: 'string' },
        postgres: { type: 'string' },
        schema: { type: 'string' },
        withdraw: { type: 'boolean' },
        'from-block': { type: 'string' },
        epoch: { type: 'string' },
        round: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'miner-key': { type: 'string' },
        out: { type: 'string' },
        to: { type: 'string' },
        eth: { type: 'string' },
        'dev-json': { type: 'string' },
        'key-file': { type: 'string' },
        'fee-bps': { type: 'string' },
        'miner-id': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr(`cgn wallet: ${(err as Error).message}\n\n${WALLET_USAGE}`);
    return 2;
  }
  const cmd = positionals[0];
  if (values.help || cmd === 'help') {
    io.stdout(WALLET_USAGE);
    return 0;
  }
  const ctx: ChainErrorContext = cmd === undefined ? {} : { command: cmd };
  try {
    if (cmd === undefined) throw new UsageError('a command is required');
    if (!COMMANDS.has(cmd)) throw new UsageError(`unknown command "${cmd}"`);
    if (cmd === 'stake-proof') {
      if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
      return await stakeProof(values, env, io);
    }
    if (cmd === 'new') {
      if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
      const w = createWalletFile(values.out as string | undefined);
      io.stdout(
        values.json
          ? JSON.stringify(w)
          : `address ${w.address}\nkey     ${w.file} (mode 0600: keep it; whoever reads it owns the funds)\n\n` +
              `on the local network, fund it:  cgn wallet faucet --address ${w.address} --amount 100\n` +
              `sign with it:                   cgn wallet ... --key-file ${w.file}`,
      );
      return 0;
    }
    const positionalAddress = (cmd === 'history' || cmd === 'balance') && positionals.length === 2 ? positionals[1] : undefined;
    if (positionals.length > (positionalAddress === undefined ? 1 : 2)) throw new UsageError(`unexpected argument "${positionals.at(-1)}"`);
    if (positionalAddress !== undefined && values.address !== undefined) throw new UsageError('give the address either as an argument or with --address');
    if (positionalAddress !== undefined) values.address = positionalAddress;
    const devJson = (values['dev-json'] as string | undefined) ?? env.CGN_DEV_JSON ?? DEFAULT_DEV_JSON;
    const dev: DevChain | null = readDevChain(devJson);
    if (values['dev-json'] !== undefined && dev === null) throw new UsageError(`--dev-json ${devJson} is missing or has no chain (was the network started with --no-chain?)`);
    const rpc = (values.rpc as string | undefined) ?? env.CGN_CHAIN_RPC ?? dev?.rpcUrl;
    if (!rpc) throw new UsageError(`--rpc URL is required (or CGN_CHAIN_RPC, or a ${devJson} from npm start)`);
    try {
      new URL(rpc);
    } catch {
      throw new UsageError(`--rpc "${rpc}" is not a URL`);
    }
    ctx.rpcUrl = rpc;
    const contractsFile = (values.contracts as string | undefined) ?? env.CGN_CHAIN_CONTRACTS ?? dev?.contractsFile;
    if (!contractsFile) throw new UsageError(`--contracts FILE is required (or CGN_CHAIN_CONTRACTS, or a ${devJson} from npm start)`);
    if (values.key !== undefined && values['key-file'] !== undefined) throw new UsageError('give either --key or --key-file');
    const given = (values.key as string | undefined) ?? (values['key-file'] !== undefined ? readWalletFile(values['key-file'] as string) : undefined);
    // the faucet gives from the dev deployer unless told otherwise, not from the user's own CGN_WALLET_KEY
    let key = given ?? (cmd === 'faucet' ? undefined : env.CGN_WALLET_KEY);
    if (key !== undefined && !isPrivateKey(key)) throw new UsageError('--key must be 0x followed by 64 hex digits');
    if (cmd === 'faucet') {
      key ??= dev?.deployerKey;
      if (key === undefined) throw new UsageError(`the faucet signs with the dev deployer's key: run it where npm start wrote ${DEFAULT_DEV_JSON}, or give --dev-json FILE (or --key)`);
    }
    const readOnly = READ_ONLY.has(cmd);
    if (!readOnly && key === undefined) throw new UsageError(`${cmd} signs a transaction: --key HEX or --key-file FILE is required (or CGN_WALLET_KEY)`);
    if (key !== undefined) ctx.signer = privateKeyToAccount(key as Hex).address;
    let who: Address | undefined;
    if (values.address !== undefined) {
      if (!isAddress(values.address as string)) throw new UsageError(`--address "${String(values.address)}" is not an address`);
      who = getAddress(values.address as string);
    } else if (key !== undefined && cmd !== 'faucet') {
      who = privateKeyToAccount(key as Hex).address;
    }
    if ((cmd === 'balance' || cmd === 'history') && who === undefined) throw new UsageError(`${cmd} needs an address (argument or --address) or --key`);
    // validate the command's own options before touching the network
    let run: (c: CgnContracts) => Promise<unknown>;
    switch (cmd) {
      case 'balance':
        run = async (c) => ({ ...(await c.balances(who!)), eth: await c.ethBalance(who!) });
        break;
      case 'faucet': {
        const to = addressOpt(values.address, '--address');
        const amount = values.amount === undefined ? 0n : tokens(values.amount as string);
        const wei = eth((values.eth as string | undefined) ?? '1');
        if (amount === 0n && wei === 0n) throw new UsageError('give --amount N (CGN) or --eth E (ETH)');
        run = (c) => faucet(c, to, amount, wei);
        break;
      }
      case 'transfer': {
        const to = addressOpt(values.to, '--to');
        const amount = values.amount === undefined ? 0n : tokens(values.amount as string);
        const wei = values.eth === undefined ? 0n : eth(values.eth as string);
        if (amount === 0n && wei === 0n) throw new UsageError('transfer needs --amount N (CGN) and/or --eth E (ETH)');
        run = async (c) => ({ to, tokens: amount, wei, tokenTx: amount > 0n ? await c.transfer(to, amount) : null, ethTx: wei > 0n ? await c.sendEth(to, wei) : null });
        break;
      }
      case 'history': {
        const fromBlock = optUint(values['from-block'], '--from-block');
        run = (c) => walletView(c.clients.public, c.addresses, who!, fromBlock === undefined ? {} : { fromBlock });
        break;
      }
      case 'validators': {
        const epoch = optUint(values.epoch, '--epoch');
        const round = optUint(values.round, '--round') ?? 0n;
        run = async (c) => ({ set: await validatorSetOf(c.clients.public, c.addresses.election, epoch), round });
        break;
      }
      case 'serve': {
        const port = Number(values.port ?? 8547);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got "${String(values.port)}"`);
        const host = (values.host as string | undefined) ?? '127.0.0.1';
        run = (c) => serve(c, host, port, io);
        break;
      }
      case 'deposit': {
        const amount = tokens(values.amount as string | undefined);
        const forWhom = values.for as string | undefined;
        if (forWhom !== undefined && !isAddress(forWhom)) throw new UsageError(`--for "${forWhom}" is not an address`);
        run = (c) => c.deposit(amount, forWhom === undefined ? undefined : getAddress(forWhom));
        break;
      }
      case 'withdraw': {
        const amount = tokens(values.amount as string | undefined);
        run = (c) => c.withdraw(amount);
        break;
      }
      case 'stake': {
        const amount = tokens(values.amount as string | undefined);
        run = (c) => c.stake(amount);
        break;
      }
      case 'unbond': {
        if (values.withdraw) {
          if (values.amount !== undefined) throw new UsageError('give either --amount or --withdraw');
          run = (c) => c.withdrawUnbonded();
        } else {
          const amount = tokens(values.amount as string | undefined);
          run = (c) => c.requestUnbond(amount);
        }
        break;
      }
      case 'claim': {
        const relayFor = values.for === undefined ? undefined : addressOpt(values.for, '--for');
        const feeBps = values['fee-bps'] === undefined ? 0 : Number(values['fee-bps']);
        if (!Number.isInteger(feeBps) || feeBps < 0 || feeBps > 10_000) throw new UsageError(`--fee-bps must be a whole number of basis points, got "${String(values['fee-bps'])}"`);
        if (feeBps > 0 && relayFor === undefined) throw new UsageError('--fee-bps goes with --for (a relayed claim)');
        const send = (c: CgnContracts, claims: ClaimInput[]) =>
          relayFor !== undefined ? c.claimFor(relayFor, claims, feeBps) : claims.length === 1 ? c.claim(claims[0]!) : c.claimMany(claims);
        const fromLedger = values.ledger !== undefined || values.postgres !== undefined;
        if ([fromLedger, values.proofs !== undefined, values.cycle !== undefined || values.proof !== undefined || values.units !== undefined].filter(Boolean).length > 1) {
          throw new UsageError('give one of --ledger/--postgres, --proofs FILE, or --cycle/--units/--proof');
        }
        if (fromLedger) {
          const ledgerOpts = { ledger: values.ledger as string | undefined, postgres: values.postgres as string | undefined, schema: values.schema as string | undefined, readonly: true };
          run = async (c) => {
            const store = await openLedgerStore(ledgerOpts);
            try {
              const beneficiary = relayFor ?? c.me;
              const claims = await claimableFromLedger(store, c, beneficiary);
              if (claims.length === 0) throw new Error(`nothing to claim: ${beneficiary} has no unclaimed payout in an anchored cycle of this ledger`);
              const tx = await send(c, claims);
              return { ...tx, claims };
            } finally {
              await store.close();
            }
          };
          break;
        }
        let claims: ClaimInput[];
        if (values.proofs !== undefined) {
          claims = readClaims(values.proofs as string);
        } else {
          if (values.cycle === undefined || values.units === undefined || values.proof === undefined) throw new UsageError('claim needs --cycle, --units and --proof (or --proofs FILE, or --ledger PATH)');
          claims = [{ cycleId: units(values.cycle, '--cycle'), amount: units(values.units, '--units'), proof: proofList(values.proof, '--proof') }];
        }
        run = (c) => send(c, claims);
        break;
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
    const contracts = await openContracts({ rpcUrl: rpc, contractsFile, ...(key !== undefined ? { privateKey: key as Hex } : {}) });
    ctx.chainId = contracts.addresses.chainId;
    let result: unknown;
    try {
      result = await run(contracts);
    } catch (err) {
      // a gas failure names the signer's ETH (best effort: the chain may be what failed)
      if (explainChainError(err, ctx).code === 'no-gas' && ctx.signer !== undefined) {
        const has = await contracts.ethBalance(ctx.signer as Address).catch(() => undefined);
        if (has !== undefined) ctx.ethBalance = has;
      }
      throw err;
    }
    if (cmd === 'serve') {
      // already reported its address; it ran until stopped
    } else if (cmd === 'validators') {
      const { set, round } = result as { set: ValidatorSet; round: bigint };
      io.stdout(
        values.json
          ? jsonOut({ epoch: set.epoch, elected: set.elected, seed: set.seed, validators: set.validators, round, proposer: set.validators.length > 0 ? set.proposer(round) : null })
          : formatValidatorSet(set, round),
      );
    } else if (cmd === 'history') {
      io.stdout(values.json ? walletViewJson(result as WalletView) : formatWalletView(result as WalletView));
    } else if (values.json) {
      io.stdout(jsonOut(result));
    } else if (cmd === 'balance') {
      const b = result as Awaited<ReturnType<CgnContracts['balances']>> & { eth: bigint };
      io.stdout(
        [
          `address       ${b.address}`,
          `tokens        ${fmt(b.tokens)}`,
          `eth (gas)     ${formatEther(b.eth)} ETH${b.eth === 0n ? ' (none: it cannot send transactions; claims can be relayed)' : ''}`,
          `escrow        ${fmt(b.escrow)} (withdrawable ${fmt(b.withdrawable)})`,
          `stake         ${fmt(b.stake)}${b.openTierEligible ? ' (open tier)' : ''}`,
          `unbonding     ${fmt(b.unbonding)}${b.unbonding > 0n ? ` (from ${new Date(Number(b.unbondingReleaseAt) * 1000).toISOString()})` : ''}`,
          ...(b.banned ? ['banned        yes (slashed)'] : []),
        ].join('\n'),
      );
    } else if (cmd === 'faucet') {
      const f = result as FaucetResult;
      io.stdout(
        [
          ...(f.tokenTx ? [`faucet: ${f.to} got ${fmt(f.tokens)} (${f.via === 'mint' ? 'minted' : 'from the dev deployer'}, tx ${f.tokenTx.hash})`] : []),
          ...(f.ethTx ? [`faucet: ${f.to} got ${formatEther(f.wei)} ETH for gas (tx ${f.ethTx.hash})`] : []),
        ].join('\n'),
      );
    } else if (cmd === 'transfer') {
      const t = result as { to: Address; tokens: bigint; wei: bigint; tokenTx: { hash: Hex } | null; ethTx: { hash: Hex } | null };
      io.stdout(
        [
          ...(t.tokenTx ? [`transfer: ${fmt(t.tokens)} to ${t.to} (tx ${t.tokenTx.hash})`] : []),
          ...(t.ethTx ? [`transfer: ${formatEther(t.wei)} ETH to ${t.to} (tx ${t.ethTx.hash})`] : []),
        ].join('\n'),
      );
    } else {
      const tx = result as { hash: Hex; blockNumber: bigint; gasUsed: bigint; claims?: { cycleId: bigint; amount: bigint }[] };
      const what = tx.claims ? ` ${tx.claims.length} cycle(s): ${tx.claims.map((c) => `cycle ${c.cycleId} ${c.amount}`).join(', ')} (base units)` : '';
      const relayed = cmd === 'claim' && values.for !== undefined ? ` for ${getAddress(values.for as string)} (relayed: the tokens went to it${values['fee-bps'] ? `, fee ${String(values['fee-bps'])} bps to the signer` : ''})` : '';
      io.stdout(`${cmd}: ok${relayed}${what} (tx ${tx.hash}, block ${tx.blockNumber}, gas ${tx.gasUsed})`);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ContractsFileError) {
      io.stderr(`cgn wallet: ${err.message}\n\n${WALLET_USAGE}`);
      return 2;
    }
    if (err instanceof WalletFileError || err instanceof FaucetRefusedError) {
      io.stderr(`cgn wallet ${cmd}: ${err.message}`);
      return err instanceof WalletFileError && err.code !== 'exists' ? 2 : 1;
    }
    io.stderr(`cgn wallet ${cmd}: ${explainChainError(err, ctx).message}`);
    return 1;
  }
}

async function stakeProof(values: Record<string, string | boolean | undefined>, env: Record<string, string | undefined>, io: WalletIo): Promise<number> {
  const key = (values.key as string | undefined) ?? env.CGN_WALLET_KEY;
  if (key === undefined || !isPrivateKey(key)) throw new UsageError('stake-proof signs: --key HEX (0x and 64 hex digits) is required (or CGN_WALLET_KEY)');
  let minerId: string;
  try {
    minerId = minerIdFrom({ minerKeyFile: values['miner-key'] as string | undefined, minerId: values['miner-id'] as string | undefined });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const p = await signStakeBinding(key, minerId);
  io.stdout(values.json ? JSON.stringify(p) : `address ${p.address}\nminer   ${p.minerId}\nproof   ${p.proof}\n\ncgn miner ... --tier open --payout-address ${p.address} --stake-proof ${p.proof}`);
  return 0;
}
