// Owns IP and CIDR matching for IPv4 and IPv6: everything becomes a 128-bit value (IPv4 as the
// IPv4-mapped `::ffff:a.b.c.d`), so a `10.0.0.0/8` rule also covers a dual-stack peer `::ffff:10.1.2.3`.

/** Four big-endian 32-bit words. */
export type Ip128 = [number, number, number, number];

export interface Cidr {
  words: Ip128;
  /** Prefix length in the 128-bit space (an IPv4 `/8` is 104). */
  bits: number;
  /** How the range was written; matching ignores it, CIDR-in-CIDR containment does not. */
  family: 4 | 6;
}

function parseIpv4Words(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const p of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value >>> 0;
}

function parseIpv6(text: string): Ip128 | null {
  let s = text;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (s.length === 0 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const groups: number[] = [];
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseHalf = (half: string): number[] | null => {
    if (half.length === 0) return [];
    const out: number[] = [];
    const items = half.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (item.includes('.')) {
        if (i !== items.length - 1) return null;
        const v4 = parseIpv4Words(item);
        if (v4 === null) return null;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = parseHalf(halves[0] as string);
  if (head === null) return null;
  if (halves.length === 2) {
    const tail = parseHalf(halves[1] as string);
    if (tail === null || head.length + tail.length > 7) return null;
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
    if (halves[1]?.includes('.') && tail.length < 2) return null;
  } else {
    if (head.length !== 8) return null;
    groups.push(...head);
  }
  return [
    ((groups[0] as number) * 65536 + (groups[1] as number)) >>> 0,
    ((groups[2] as number) * 65536 + (groups[3] as number)) >>> 0,
    ((groups[4] as number) * 65536 + (groups[5] as number)) >>> 0,
    ((groups[6] as number) * 65536 + (groups[7] as number)) >>> 0,
  ];
}

/** Any textual IPv4 or IPv6 address (zone ids ignored) as 128 bits, or null when it is not an address. */
export function parseIp(text: string): Ip128 | null {
  if (text.includes(':')) return parseIpv6(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
  const v4 = parseIpv4Words(text);
  return v4 === null ? null : [0, 0, 0xffff, v4];
}

/** `10.0.0.0/8`, `::1`, `2001:db8::/32`; null when malformed. An address alone is a full-length prefix. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const isV4 = !addr.includes(':');
  const words = parseIp(addr);
  if (words === null) return null;
  let bits = isV4 ? 32 : 128;
  if (slash !== -1) {
    const len = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(len) || Number(len) > bits) return null;
    bits = Number(len);
  }
  if (isV4) bits += 96;
  return { words: maskWords(words, bits), bits, family: isV4 ? 4 : 6 };
}

/**
 * parseCidr for ranges in Kubernetes objects, written the way the Linkerd webhook accepts them: no zone
 * id, no brackets, no leading zero in the prefix length, and an embedded IPv4 address only at the end.
 */
export function parseCidrStrict(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  if (/[%[\]]/.test(addr)) return null;
  if (slash !== -1 && !/^(?:0|[1-9][0-9]{0,2})$/.test(text.slice(slash + 1))) return null;
  if (addr.includes(':') && addr.includes('.') && addr.indexOf('.') < addr.lastIndexOf(':')) return null;
  return parseCidr(text);
}

/** True when every address of `inner` lies in `outer`; an IPv4 range never contains an IPv6 one, nor the reverse. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.bits >= outer.bits && cidrContains(outer, inner.words);
}

function maskWord(bitsInWord: number): number {
  if (bitsInWord >= 32) return 0xffffffff;
  if (bitsInWord <= 0) return 0;
  return (0xffffffff << (32 - bitsInWord)) >>> 0;
}

function maskWords(w: Ip128, bits: number): Ip128 {
  return [
    (w[0] & maskWord(bits)) >>> 0,
    (w[1] & maskWord(bits - 32)) >>> 0,
    (w[2] & maskWord(bits - 64)) >>> 0,
    (w[3] & maskWord(bits - 96)) >>> 0,
  ];
}

export function cidrContains(c: Cidr, ip: Ip128): boolean {
  for (let i = 0; i < 4; i++) {
    const m = maskWord(c.bits - 32 * i);
    if (m === 0) return true;
    if (((ip[i] as number) & m) >>> 0 !== c.words[i]) return false;
  }
  return true;
}

// One-entry cache: a request reads the same source IP for every CIDR leaf of every candidate rule.
let lastText = '';
let lastIp: Ip128 | null = null;

export function parseIpCached(text: string): Ip128 | null {
  if (text === lastText) return lastIp;
  lastIp = parseIp(text);
  lastText = text;
  return lastIp;
}

/** Compiles a CIDR list once; throws on a malformed entry (dialects validate before lowering). */
export function compileCidrs(list: readonly string[]): (ipText: string | undefined) => boolean {
  const cidrs = list.map((t) => {
    const c = parseCidr(t);
    if (c === null) throw new Error(`invalid IP or CIDR ${JSON.stringify(t)}`);
    return c;
  });
  return (ipText) => {
    if (ipText === undefined || ipText.length === 0) return false;
    const ip = parseIpCached(ipText);
    if (ip === null) return false;
    for (const c of cidrs) if (cidrContains(c, ip)) return true;
    return false;
  };
}
