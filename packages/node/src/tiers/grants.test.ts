import { describe, expect, it } from 'vitest';
import { tierRefusal, type MinerGrant } from './grants.js';
import { parseGrants } from './grants-file.js';

const ID = 'ab'.repeat(32);
const open: MinerGrant = { tier: 'open', attestationKey: null, by: 'central' };

describe('tiers are granted, not claimed', () => {
  it('open is every admitted miner\'s; dedicated only when granted; attested only with an attestation key', () => {
    expect(tierRefusal(ID, 'open', open)).toBeNull();
    expect(tierRefusal(ID, 'dedicated', open)).toMatch(/tier dedicated refused: miner abababababababab is not registered as dedicated \(it is granted open\)/);
    expect(tierRefusal(ID, 'dedicated', { ...open, tier: 'dedicated' })).toBeNull();
    expect(tierRefusal(ID, 'attested', { ...open, tier: 'dedicated' })).toMatch(/tier attested refused: .* no attestation key registered/);
    expect(tierRefusal(ID, 'attested', { ...open, attestationKey: 'PEM' })).toBeNull();
  });

  it('a grants file names what is wrong', () => {
    expect(() => parseGrants({ miners: { nope: {} } })).toThrow(/"nope" is not a miner id/);
    expect(() => parseGrants({ miners: { [ID]: { tier: 'attested' } } })).toThrow(/tier must be open or dedicated \(attested is granted per verified quote\)/);
    expect(() => parseGrants({ miners: { [ID]: { attestationKey: 'not a key' } } })).toThrow(/attestationKey must be a PEM public key/);
    expect(() => parseGrants({ attestation: { runtimes: ['x'] } })).toThrow(/runtimes must be a list of sha256 hex digests/);
    expect(parseGrants({ miners: { [ID]: { tier: 'dedicated' } } })).toEqual({ miners: { [ID]: { tier: 'dedicated' } }, attestation: { runtimes: [], dservices: {} } });
  });
});
