/**
 * "How to top up" for an account's balance page: where its deposits go (the settlement escrow
 * contract, when central was told the deployment) and the commands that get CGN there. Pure; the
 * escrow facts come from the deployment's contracts file (`escrowFromContractsJson`).
 */
export interface EscrowInfo {
  chainId: number;
  /** The settlement contract that holds escrow (deposits go here). */
  settlement: string;
  /** The CGN token (ERC-20, 18 decimals). */
  token: string;
  /** The chain's JSON-RPC URL, when central knows one to show. */
  rpcUrl: string | null;
}

export interface TopUpStep {
  what: string;
  command: string | null;
}

export interface TopUp {
  escrow: EscrowInfo | null;
  /** Addresses already linked: deposits from them credit this account. */
  linked: string[];
  steps: TopUpStep[];
  note: string;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** The escrow facts of a contracts file (`cgn dev` writes `.cgn/chain-contracts.json`); throws on a malformed one. */
export function escrowFromContractsJson(text: string, rpcUrl: string | null): EscrowInfo {
  const o = JSON.parse(text) as Record<string, unknown>;
  const chainId = Number(o['chainId']);
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new Error('contracts file: "chainId" must be a positive integer');
  for (const k of ['settlement', 'token']) {
    if (typeof o[k] !== 'string' || !ADDRESS.test(o[k])) throw new Error(`contracts file: "${k}" must be an address`);
  }
  return { chainId, settlement: (o['settlement'] as string).toLowerCase(), token: (o['token'] as string).toLowerCase(), rpcUrl };
}

/** The steps for `accountId`, with the first linked address filled in where there is one. */
export function topUpSteps(accountId: string, linked: readonly string[], escrow: EscrowInfo | null): TopUp {
  const wallet = linked[0] ?? '0xYOURWALLET';
  const rpc = escrow?.rpcUrl ?? '$RPC';
  const contracts = '$CONTRACTS_FILE';
  const steps: TopUpStep[] = [];
  if (linked.length === 0) {
    steps.push({ what: 'Make a wallet (its key goes to a file only you can read), or use one you have', command: 'npx cgn wallet new' });
    steps.push({ what: 'Link the wallet to this account: deposits from it then credit the account (the network operator runs this where the ledger is)', command: `npx cgn ledger link-address --account ${accountId} --address ${wallet}` });
  }
  steps.push({ what: 'The wallet needs CGN to deposit and a little ETH for gas; on a local chain the faucet gives both', command: `npx cgn wallet faucet --address ${wallet} --amount 100` });
  steps.push({ what: 'Deposit into the settlement escrow (approves the token first)', command: `npx cgn wallet deposit --amount 10 --key-file .cgn/wallets/${wallet}.key --rpc ${rpc} --contracts ${contracts}` });
  steps.push({ what: 'See the wallet, its escrow and every deposit on chain', command: `npx cgn wallet history ${wallet} --rpc ${rpc} --contracts ${contracts}` });
  return {
    escrow,
    linked: [...linked],
    steps,
    note: 'A deposit is credited to this account once the chain has made it final (cgn settle watches the escrow); the balance here then grows by it. Unused balance can be withdrawn: cgn ledger withdraw, then cgn wallet withdraw after the next anchor.',
  };
}
