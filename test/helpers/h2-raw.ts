// Test helper: a raw HTTP/2 client over TLS that writes frames itself (no flow-control or SETTINGS
// obedience), for hostile-client tests (stream floods, rapid reset, control-frame floods), and an h2c
// workload that records frames per stream (END_STREAM, RST_STREAM) for request-integrity tests.

import * as net from 'node:net';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK prefix integer (RFC 7541 §5.1). */
export function hpackInt(value: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const out = [firstByteFlags | max];
  let v = value - max;
  while (v >= 128) { out.push((v % 128) + 128); v = Math.floor(v / 128); }
  out.push(v);
  return Buffer.from(out);
}

/** An HPACK string literal without Huffman coding, any length. */
export function hpackString(s: Buffer | string): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** Literal header fields without indexing, new names, taken byte for byte (no validation: for hostile tests). */
export function hpackLiterals(fields: readonly (readonly [Buffer | string, Buffer | string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0x00]), hpackString(n), hpackString(v)]));
}

/** A header block as HEADERS plus CONTINUATION frames of at most 16 KiB (the default SETTINGS_MAX_FRAME_SIZE). */
export function headerFrames(streamId: number, block: Buffer, endStream: boolean): Buffer {
  const pieces: Buffer[] = [];
  for (let at = 0; at < block.length || pieces.length === 0; at += 16_384) pieces.push(block.subarray(at, at + 16_384));
  return Buffer.concat(pieces.map((piece, i) => {
    const endHeaders = i === pieces.length - 1 ? FLAG.END_HEADERS : 0;
    return i === 0 ? frame(FRAME.HEADERS, (endStream ? FLAG.END_STREAM : 0) | endHeaders, streamId, piece) : frame(9, endHeaders, streamId, piece);
  }));
}

/** A request header block: static-table `:method`/`:scheme`, literal `:path`, `:authority` and extras, no Huffman. */
export function headerBlock(method: 'GET' | 'POST', path: string, authority: string, extra: [string, string][] = []): Buffer {
  const parts: Buffer[] = [Buffer.from([method === 'GET' ? 0x82 : 0x83, 0x87])];
  parts.push(Buffer.from([0x04]), hpackString(path)); // literal without indexing, indexed name 4 (:path)
  parts.push(Buffer.from([0x01]), hpackString(authority)); // indexed name 1 (:authority)
  for (const [n, v] of extra) parts.push(Buffer.from([0x00]), hpackString(n), hpackString(v));
  return Buffer.concat(parts);
}

export interface ParsedFrame { type: number; flags: number; streamId: number; payload: Buffer }

/** Splits received bytes into frames (keeps an incomplete tail for the next call). */
export class FrameReader {
  private buf = Buffer.alloc(0);
  readonly frames: ParsedFrame[] = [];
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      this.frames.push({ type: this.buf[3]!, flags: this.buf[4]!, streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) });
      this.buf = this.buf.subarray(9 + len);
    }
  }
}

export interface RawH2 {
  socket: tls.TLSSocket;
  reader: FrameReader;
  closed: Promise<void>;
  write(b: Buffer): boolean;
}

/** Connects with ALPN h2, sends the preface and an empty SETTINGS, and ACKs the server's SETTINGS. */
export function connectRawH2(opts: { port: number; ca: string; cert: string; key: string }): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    let closedResolve: () => void = () => undefined;
    const closed = new Promise<void>((r) => { closedResolve = r; });
    const socket = tls.connect({ host: '127.0.0.1', port: opts.port, ca: opts.ca, cert: opts.cert, key: opts.key, ALPNProtocols: ['h2'] }, () => {
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({ socket, reader, closed, write: (b) => socket.write(b) });
    });
    socket.on('data', (d: Buffer) => {
      const before = reader.frames.length;
      reader.push(d);
      for (const f of reader.frames.slice(before)) {
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && !socket.destroyed) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
    });
    socket.on('error', (e) => { reject(e); closedResolve(); });
    socket.on('close', () => closedResolve());
  });
}

/**
 * An h2c workload read frame by frame: records, per stream, whether END_STREAM and RST_STREAM arrived, the
 * streams completed (END_STREAM) in order, and the bytes of every stream frame; a completed stream is
 * answered 200.
 */
export async function rawH2cUpstream(): Promise<{ url: string; streams: Map<number, { endStream: boolean; rst: number | null; dataBytes: number }>; completed: number[]; readonly bytes: number; close(): Promise<void> }> {
  const streams = new Map<number, { endStream: boolean; rst: number | null; dataBytes: number }>();
  const completed: number[] = [];
  let streamBytes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const reader = new FrameReader();
    let prefaceSeen = false;
    let pending = Buffer.alloc(0);
    socket.write(frame(FRAME.SETTINGS, 0, 0));
    socket.on('data', (d: Buffer) => {
      if (!prefaceSeen) {
        pending = Buffer.concat([pending, d]);
        if (pending.length < 24) return;
        prefaceSeen = true;
        d = pending.subarray(24);
      }
      const start = reader.frames.length;
      reader.push(d);
      for (const f of reader.frames.slice(start)) {
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (f.streamId === 0) continue;
        streamBytes += 9 + f.payload.length;
        const s = streams.get(f.streamId) ?? { endStream: false, rst: null, dataBytes: 0 };
        streams.set(f.streamId, s);
        if ((f.type === FRAME.HEADERS || f.type === FRAME.DATA) && (f.flags & FLAG.END_STREAM) !== 0 && !s.endStream) {
          s.endStream = true;
          completed.push(f.streamId);
          socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, f.streamId, Buffer.from([0x88]))); // :status 200
        }
        if (f.type === FRAME.DATA) s.dataBytes += f.payload.length;
        if (f.type === FRAME.RST_STREAM) s.rst = f.payload.readUInt32BE(0);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `h2c://127.0.0.1:${(server.address() as AddressInfo).port}`,
    streams,
    completed,
    get bytes() { return streamBytes; },
    async close() { for (const s of sockets) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
}
