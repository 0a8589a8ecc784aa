/**
 * Registers a local network's attested miner at central, idempotently (safe on every `cgn dev`):
 * a miner operator account (`dev-miners`) whose owner registers the miner key with its TPM's
 * attestation key (or updates the key when the TPM was reset), and the runtime's measurement on
 * the allow-list (the administrator's part). DServices are allowed by their approved digests.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { api, type Api } from './cli/common.js';

export interface DevAttestedMinerOptions {
  centralUrl: string;
  admin: { login: string; password: string };
  /** The owner of the `dev-miners` account from the last run; generated when the account is new. */
  ownerPassword?: string;
  minerId: string;
  name: string;
  /** SPKI PEM of the attestation key in the miner's TPM. */
  attestationKey: string;
  /** sha256 hex of the miner runtime (`measureRuntime`). */
  runtime: string;
}

const ACCOUNT = 'dev-miners';
const OWNER = 'dev-miners-owner';

const sameKey = (a: string, b: string): boolean =>
  createPublicKey(a).export({ type: 'spki', format: 'der' }).equals(createPublicKey(b).export({ type: 'spki', format: 'der' }));

async function login(url: string, l: string, password: string): Promise<Api> {
  const r = await api(url, null).call('POST', '/v1/auth/login', { login: l, password });
  return api(url, r.token as string);
}

export async function registerDevAttestedMiner(o: DevAttestedMinerOptions): Promise<{ ownerLogin: string; ownerPassword: string }> {
  const url = o.centralUrl.replace(/\/+$/, '');
  const admin = await login(url, o.admin.login, o.admin.password);
  const accounts = (await admin.call('GET', '/v1/accounts')).accounts as { id: string; name: string }[];
  let ownerPassword = o.ownerPassword;
  if (!accounts.some((a) => a.name === ACCOUNT)) {
    ownerPassword ??= `Rig-${randomBytes(9).toString('base64url')}!`;
    await admin.call('POST', '/v1/accounts', { name: ACCOUNT, kinds: ['miner'], owner: { login: OWNER, password: ownerPassword } });
  } else if (ownerPassword === undefined) {
    throw new Error(`central has a ${ACCOUNT} account but its owner's password is not in dev.json; remove the central state (.cgn/central) to start over`);
  }
  const miners = (await admin.call('GET', '/v1/miners')).miners as { id: string; attestationKey: string | null }[];
  const known = miners.find((m) => m.id === o.minerId);
  if (known === undefined) {
    const owner = await login(url, OWNER, ownerPassword!);
    await owner.call('POST', '/v1/miners', { publicKey: o.minerId, name: o.name, attestationKey: o.attestationKey });
  } else if (known.attestationKey === null || !sameKey(known.attestationKey, o.attestationKey)) {
    await admin.call('PUT', `/v1/miners/${o.minerId}/attestation-key`, { attestationKey: o.attestationKey });
  }
  await admin.call('POST', '/v1/attestation/runtimes', { digest: o.runtime, note: 'cgn dev: the runtime of this checkout' });
  return { ownerLogin: OWNER, ownerPassword: ownerPassword! };
}
