// Owns a minimal strict DER reader and writer for the X.509 structures Portcullis builds and inspects.
// Follows ITU-T X.690 (DER) and RFC 5280; definite lengths only, every read bounds-checked.

/** One tag-length-value element inside `buf`, value at [start, end). */
export interface Tlv {
  /** The full identifier octet (class + constructed bit + tag number < 31). */
  tag: number;
  /** Offset of the identifier octet (the element's first byte). */
  offset: number;
  start: number;
  end: number;
  /** Offset just past this element. */
  next: number;
}

export class DerError extends Error {}

export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in X.509');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite length is not DER');
    if (count > 4) throw new DerError('length too large');
    if (pos + count > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || (count > 1 && buf[pos - count] === 0)) throw new DerError('non-minimal length');
  }
  const end = pos + length;
  if (end > limit) throw new DerError('element overruns its container');
  return { tag, offset, start: pos, end, next: end };
}

/** The direct children of a constructed element. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.next;
  }
  return out;
}

export function decodeOid(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end === tlv.start) throw new DerError('expected OBJECT IDENTIFIER');
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    const byte = buf[i]!;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) throw new DerError('OID arc too large');
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) {
        const firstArc = value < 40 ? 0 : value < 80 ? 1 : 2;
        parts.push(firstArc, value - firstArc * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  if ((buf[tlv.end - 1]! & 0x80) !== 0) throw new DerError('truncated OID');
  return parts.join('.');
}

/** UTCTime / GeneralizedTime (the `Z` forms RFC 5280 allows) to epoch milliseconds. */
export function decodeTime(buf: Uint8Array, tlv: Tlv): number {
  const text = Buffer.from(buf.subarray(tlv.start, tlv.end)).toString('latin1');
  let match: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === 0x17 && (match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === 0x18 && (match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    year = Number(match[1]);
  } else {
    throw new DerError('bad certificate time');
  }
  return Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6]));
}

// ---- writer ---------------------------------------------------------------------------------------

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

export const der = {
  sequence: (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items)),
  set: (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items)),
  boolean: (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00])),
  null: (): Buffer => Buffer.from([0x05, 0x00]),
  octetString: (value: Uint8Array): Buffer => tlv(0x04, value),
  /** A BIT STRING with the given unused-bit count in its last byte. */
  bitString: (value: Uint8Array, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), value])),
  utf8: (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8')),
  /** A positive INTEGER from big-endian magnitude bytes. */
  integer: (magnitude: Uint8Array): Buffer => {
    let bytes = Buffer.from(magnitude);
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0 && (bytes[i + 1]! & 0x80) === 0) i++;
    bytes = bytes.subarray(i);
    if (bytes.length === 0) bytes = Buffer.from([0]);
    if ((bytes[0]! & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
    return tlv(0x02, bytes);
  },
  smallInteger: (value: number): Buffer => {
    const bytes: number[] = [];
    for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    return der.integer(Buffer.from(bytes));
  },
  oid: (dotted: string): Buffer => {
    const arcs = dotted.split('.').map(Number);
    const out: number[] = [arcs[0]! * 40 + arcs[1]!];
    for (const arc of arcs.slice(2)) {
      const groups: number[] = [arc & 0x7f];
      for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) groups.unshift((n & 0x7f) | 0x80);
      out.push(...groups);
    }
    return tlv(0x06, Buffer.from(out));
  },
  /** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
  time: (date: Date): Buffer => {
    const iso = date.toISOString();
    const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
    const year = date.getUTCFullYear();
    return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2) + 'Z', 'latin1')) : tlv(0x18, Buffer.from(digits + 'Z', 'latin1'));
  },
  /** Context-specific tag `[n]`: constructed (explicit wrapping) or primitive (implicit string). */
  context: (n: number, value: Uint8Array, constructed: boolean): Buffer => tlv(0x80 | (constructed ? 0x20 : 0) | n, value),
};
