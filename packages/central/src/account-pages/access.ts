/**
 * Who may read an account's pages (usage series, balance, developer view): staff (administrator,
 * operator, monitor) and the account's owner — the same rule as usage and invoices (billing.ts):
 * money is the owner's business, not every member's. A refusal is audited; an unknown account is
 * a 404 (only after the caller passed the check, so strangers learn nothing about which ids exist).
 */
import { forbidden, notFound } from '../errors.js';
import { CentralService, type Actor, type Ctx } from '../service.js';
import type { AccountRecord } from '../store/store.js';

export function isAccountOwner(actor: Actor, accountId: string): boolean {
  return actor.kind === 'session' && actor.user.role === 'user' && actor.user.accountId === accountId && actor.user.owner;
}

export async function mayReadAccount(svc: CentralService, actor: Actor, accountId: string, what: string, ctx: Ctx): Promise<AccountRecord> {
  if (!CentralService.isStaff(actor) && !isAccountOwner(actor, accountId)) {
    const who = actor.kind === 'session' ? actor.user.id : actor.kind === 'key' ? actor.key.id : actor.keyId;
    await svc.audit({ type: 'access_denied', actor: who, accountId, ip: ctx.ip, outcome: 'denied', details: { what } });
    throw forbidden(`not allowed: ${what} (staff and the account owner only)`);
  }
  const account = await svc.store.getAccount(accountId);
  if (account === undefined) throw notFound(`account ${accountId}`);
  return account;
}
