/**
 * Offline GeoIP: IP ranges to coordinates and a region, from a CSV file of lines
 * `start_ip,end_ip,lat,lon,region[,label]` (IPv4 or IPv6; `#` comments). The shipped table
 * (`data/geoip.csv`) covers loopback, private and documentation ranges only; a real table of the
 * same shape can be loaded with `GeoIp.fromFile`. Lookups are a binary search over sorted,
 * non-overlapping ranges.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';

export const DEFAULT_GEOIP_FILE = new URL('../../data/geoip.csv', import.meta.url);

export interface GeoLocation {
  lat: number;
  lon: number;
  region: string;
  label: string;
}

interface Range extends GeoLocation {
  start: bigint;
  end: bigint;
}

/** IPv4 as a 32-bit number; IPv6 as 128 bits (IPv4-mapped IPv6 becomes IPv4). */
export function parseIp(ip: string): { v: 4 | 6; n: bigint } | null {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  if (mapped) s = mapped[1]!;
  if (isIPv4(s)) return { v: 4, n: s.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n) };
  if (!isIPv6(s)) return null;
  s = s.replace(/%.*$/, '');
  let tail: string[] = [];
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const parts = v4tail[1]!.split('.').map(Number);
    tail = [((parts[0]! << 8) | parts[1]!).toString(16), ((parts[2]! << 8) | parts[3]!).toString(16)];
    s = s.slice(0, -v4tail[1]!.length) + '0:0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  if (tail.length) groups.splice(6, 2, ...tail);
  if (groups.length !== 8) return null;
  return { v: 6, n: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
}

export class GeoIp {
  private constructor(private readonly v4: Range[], private readonly v6: Range[]) {}

  static fromCsv(text: string, source = 'geoip csv'): GeoIp {
    const v4: Range[] = [];
    const v6: Range[] = [];
    text.split(/\r?\n/).forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const f = t.split(',');
      const fail = (why: string): never => {
        throw new Error(`${source}:${i + 1}: ${why}`);
      };
      if (f.length < 5) fail('expected start_ip,end_ip,lat,lon,region[,label]');
      const a = parseIp(f[0]!);
      const b = parseIp(f[1]!);
      if (a === null || b === null || a.v !== b.v) fail('start and end must be IP addresses of the same family');
      const lat = Number(f[2]);
      const lon = Number(f[3]);
      if (!(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) fail('lat/lon out of range');
      if (a!.n > b!.n) fail('start is after end');
      const region = f[4]!.trim();
      if (!/^[a-z0-9-]{1,32}$/.test(region)) fail(`bad region "${region}"`);
      (a!.v === 4 ? v4 : v6).push({ start: a!.n, end: b!.n, lat, lon, region, label: f.slice(5).join(',').trim() });
    });
    const prep = (rs: Range[]): Range[] => {
      rs.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
      for (let i = 1; i < rs.length; i++) if (rs[i]!.start <= rs[i - 1]!.end) throw new Error(`${source}: overlapping ranges (${rs[i - 1]!.label} / ${rs[i]!.label})`);
      return rs;
    };
    return new GeoIp(prep(v4), prep(v6));
  }

  static fromFile(file: string | URL = DEFAULT_GEOIP_FILE): GeoIp {
    return GeoIp.fromCsv(readFileSync(file, 'utf8'), String(file));
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  lookup(ip: string): GeoLocation | null {
    const p = parseIp(ip);
    if (p === null) return null;
    const rs = p.v === 4 ? this.v4 : this.v6;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = rs[mid]!;
      if (p.n < r.start) hi = mid - 1;
      else if (p.n > r.end) lo = mid + 1;
      else return { lat: r.lat, lon: r.lon, region: r.region, label: r.label };
    }
    return null;
  }
}
