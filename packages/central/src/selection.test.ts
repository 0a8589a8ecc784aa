import { describe, expect, it } from 'vitest';
import { distanceKm, selectNodesForDApp, selectNodesForMiner, type SelectableNode } from './selection.js';
import { GeoIp, parseIp } from './registry/geoip.js';

const NOW = Date.UTC(2025, 5, 1);
const CITY = {
  berlin: { lat: 52.52, lon: 13.405 },
  frankfurt: { lat: 50.1109, lon: 8.6821 },
  paris: { lat: 48.8566, lon: 2.3522 },
  london: { lat: 51.5074, lon: -0.1278 },
  washington: { lat: 38.9072, lon: -77.0369 },
  singapore: { lat: 1.3521, lon: 103.8198 },
};

type Row = [id: string, city: keyof typeof CITY, region: string, health: SelectableNode['health'], slots: number, busy: number, queued: number, extra?: Partial<SelectableNode>];

/** The table: one DService ("img") everywhere, "txt" only where stated. */
const TABLE: Row[] = [
  ['fra-1', 'frankfurt', 'eu-central', 'up', 10, 2, 0],
  ['fra-2', 'frankfurt', 'eu-central', 'up', 10, 9, 0], // busier twin of fra-1
  ['ber-1', 'berlin', 'eu-central', 'up', 4, 4, 3], // full: no free slot
  ['par-1', 'paris', 'eu-west', 'up', 10, 0, 0],
  ['lon-1', 'london', 'eu-west', 'degraded', 10, 0, 0],
  ['lon-2', 'london', 'eu-west', 'down', 10, 0, 0],
  ['was-1', 'washington', 'us-east', 'up', 20, 0, 0],
  ['sin-1', 'singapore', 'ap-southeast', 'up', 20, 0, 0, { capacity: { img: { slots: 20, busy: 0, queued: 0 }, txt: { slots: 2, busy: 0, queued: 0 } } }],
  ['old-1', 'berlin', 'eu-central', 'up', 10, 0, 0, { lastSeenAt: NOW - 10 * 60_000 }], // stale
  ['drn-1', 'berlin', 'eu-central', 'up', 10, 0, 0, { draining: true }],
];

const NODES: SelectableNode[] = TABLE.map(([id, city, region, health, slots, busy, queued, extra]) => ({
  id, region, ...CITY[city], health, draining: false, lastSeenAt: NOW - 1000,
  capacity: { img: { slots, busy, queued } },
  urls: { work: `https://${id}.example/v1/d/`, miner: `wss://${id}.example/miner`, status: `https://${id}.example/v1/status` },
  ...extra,
}));

describe('distance', () => {
  it('Berlin-Paris is about 878 km', () => {
    expect(distanceKm(CITY.berlin, CITY.paris)).toBeCloseTo(878, -1);
    expect(distanceKm(CITY.paris, CITY.paris)).toBe(0);
  });
});

describe('selectNodesForDApp', () => {
  const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

  it('a DApp in Berlin: near nodes with room first, busy/degraded next, down/stale/draining last', () => {
    const r = selectNodesForDApp(NODES, { location: CITY.berlin, dservices: ['img'], allowedRegions: null, now: NOW, limit: 20 });
    expect(ids(r)).toEqual(['fra-1', 'par-1', 'fra-2', 'was-1', 'sin-1', 'lon-1', 'ber-1', 'drn-1', 'old-1', 'lon-2']);
    expect(r.map((x) => x.class)).toEqual(['ready', 'ready', 'ready', 'ready', 'ready', 'busy', 'busy', 'unavailable', 'unavailable', 'unavailable']);
    expect(r[0]!.distanceKm).toBeCloseTo(424, -1);
  });

  it('honours the account\'s data regions as a hard filter', () => {
    const r = selectNodesForDApp(NODES, { location: CITY.washington, dservices: ['img'], allowedRegions: ['eu-west'], now: NOW, limit: 20 });
    expect(ids(r)).toEqual(['par-1', 'lon-1', 'lon-2']);
  });

  it('only nodes that route every DService asked for', () => {
    const r = selectNodesForDApp(NODES, { location: CITY.berlin, dservices: ['img', 'txt'], allowedRegions: null, now: NOW });
    expect(ids(r)).toEqual(['sin-1']);
    expect(selectNodesForDApp(NODES, { location: null, dservices: ['nope'], allowedRegions: null, now: NOW })).toEqual([]);
  });

  it('without a location, ranks by load alone', () => {
    const r = selectNodesForDApp(NODES, { location: null, dservices: ['img'], allowedRegions: null, now: NOW, limit: 4 });
    // equal scores and free slots: by id
    expect(ids(r)).toEqual(['sin-1', 'was-1', 'par-1', 'fra-1']);
  });

  it('distance and load trade off: a nearby full-ish node loses to a free one a bit further', () => {
    // fra-2 (424 km, 90 % busy) vs par-1 (878 km, idle): 0.42 + 1.8 > 0.88 + 0
    const r = selectNodesForDApp(NODES, { location: CITY.berlin, dservices: ['img'], allowedRegions: ['eu-central', 'eu-west'], now: NOW, limit: 3 });
    expect(ids(r)).toEqual(['fra-1', 'par-1', 'fra-2']);
  });
});

describe('selectNodesForMiner', () => {
  it('biased to nodes short of capacity for what the miner offers', () => {
    const r = selectNodesForMiner(NODES, { location: CITY.paris, offers: ['img'], now: NOW, limit: 20 });
    // ber-1 is overloaded (need 7/4): first, though 878 km away; then fra-2 (need 0.9); then the
    // idle node next door (par-1, 0 km) before fra-1 (need 0.2, 480 km); down/stale/draining last
    expect(r.map((x) => x.id).slice(0, 4)).toEqual(['ber-1', 'fra-2', 'par-1', 'fra-1']);
    expect(r.slice(-3).every((x) => x.class === 'unavailable')).toBe(true);
    expect(r.find((x) => x.id === 'lon-1')!.class).toBe('busy');
  });

  it('a node that routes a DService nobody runs needs a miner most', () => {
    const nodes: SelectableNode[] = [
      { ...NODES[0]!, id: 'near-ok', capacity: { txt: { slots: 4, busy: 1, queued: 0 } } },
      { ...NODES[6]!, id: 'far-empty', capacity: { txt: { slots: 0, busy: 0, queued: 5 } } },
    ];
    const r = selectNodesForMiner(nodes, { location: CITY.frankfurt, offers: ['txt', 'img'], now: NOW });
    expect(r.map((x) => x.id)).toEqual(['far-empty', 'near-ok']);
    expect(selectNodesForMiner(nodes, { location: null, offers: ['img'], now: NOW })).toEqual([]);
  });
});

describe('offline GeoIP', () => {
  const geo = GeoIp.fromFile();

  it('resolves the shipped ranges (IPv4, IPv6, mapped)', () => {
    expect(geo.lookup('127.0.0.1')?.region).toBe('local');
    expect(geo.lookup('192.0.2.55')).toMatchObject({ region: 'eu-central', lat: 50.1109 });
    expect(geo.lookup('198.51.100.1')?.region).toBe('us-east');
    expect(geo.lookup('203.0.113.127')?.region).toBe('ap-southeast');
    expect(geo.lookup('203.0.113.128')?.region).toBe('us-west');
    expect(geo.lookup('::ffff:192.0.2.1')?.region).toBe('eu-central');
    expect(geo.lookup('2001:db8::1')?.region).toBe('eu-west');
    expect(geo.lookup('::1')?.region).toBe('local');
    expect(geo.lookup('8.8.8.8')).toBeNull();
    expect(geo.lookup('not an ip')).toBeNull();
  });

  it('loads bigger tables of the same shape and refuses broken ones', () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `11.${i >> 8}.${i & 255}.0,11.${i >> 8}.${i & 255}.255,${(i % 180) - 90},${(i % 360) - 180},r-${i % 7}`);
    const g = GeoIp.fromCsv(rows.join('\n'));
    expect(g.size).toBe(5000);
    expect(g.lookup('11.3.7.9')?.region).toBe(`r-${(3 * 256 + 7) % 7}`);
    expect(() => GeoIp.fromCsv('1.0.0.0,1.0.0.255,0,0,a\n1.0.0.128,1.0.1.0,0,0,b')).toThrow(/overlapping/);
    expect(() => GeoIp.fromCsv('1.0.0.0,::1,0,0,a')).toThrow(/same family/);
    expect(() => GeoIp.fromCsv('1.0.0.0,1.0.0.1,91,0,a')).toThrow(/lat/);
  });

  it('parses IPv6 forms', () => {
    expect(parseIp('::')?.n).toBe(0n);
    expect(parseIp('::1')?.n).toBe(1n);
    expect(parseIp('2001:db8::')?.n).toBe(0x20010db8n << 96n);
    expect(parseIp('[2001:db8::2]')?.n).toBe((0x20010db8n << 96n) + 2n);
  });
});
