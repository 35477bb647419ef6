// Owns reading decision logs line by line with bounded memory: plain or gzip (recognised by its magic bytes,
// whatever the file is called), a chunk's lines at a time, an overlong line skipped and reported, never held.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

/** Longer lines are not events Portcullis writes; they are reported, never held in memory whole. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** A line with something on it (stops at the first non-blank character instead of copying the line). */
const NON_BLANK = /\S/;
const LF = 0x0a;
const CR = 0x0d;
const OPEN_BRACE = 0x7b;

export interface LogLine {
  /** 1-based line number in the (decompressed) file. */
  line: number;
  /** The text, or null for a line longer than MAX_LINE_BYTES. */
  text: string | null;
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** Decodes one line (without its LF, and without a CR before it); a blank line gives null. */
function lineText(buf: Buffer, start: number, end: number): string | null {
  if (end > start && buf[end - 1] === CR) end--;
  if (end === start) return null;
  const text = buf.toString('utf8', start, end);
  // An event starts with `{`: only other lines pay for the blank test.
  return buf[start] === OPEN_BRACE || NON_BLANK.test(text) ? text : null;
}

/**
 * The non-empty lines of one log file, handed out a chunk's worth at a time (one await per chunk, not per
 * line). Rejects when the file cannot be read or is corrupt gzip.
 */
export async function* logLines(file: string): AsyncGenerator<LogLine[]> {
  const gzip = await isGzip(file);
  const raw = createReadStream(file, { highWaterMark: 256 * 1024 });
  const input: Readable = gzip ? raw.pipe(createGunzip({ chunkSize: 256 * 1024 })) : raw;
  if (gzip) raw.on('error', (err) => input.destroy(err));
  // Lines are cut from the bytes and each decoded on its own (an LF byte never occurs inside a UTF-8
  // character): decoding whole chunks into one large string cost more than the lines themselves.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  let line = 0;
  const finish = (buf: Buffer, start: number, end: number, out: LogLine[]): void => {
    line++;
    if (overlong) { out.push({ line, text: null }); overlong = false; return; }
    let text: string | null;
    if (pendingBytes === 0) text = lineText(buf, start, end);
    else {
      pending.push(buf.subarray(start, end));
      const whole = Buffer.concat(pending, pendingBytes + end - start);
      pending = [];
      pendingBytes = 0;
      text = lineText(whole, 0, whole.length);
    }
    if (text !== null) out.push({ line, text });
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const out: LogLine[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, start)) {
      finish(chunk, start, nl, out);
      start = nl + 1;
    }
    if (!overlong && start < chunk.length) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) { overlong = true; pending = []; pendingBytes = 0; }
      else pending.push(chunk.subarray(start));
    }
    if (out.length > 0) yield out;
  }
  if (pendingBytes > 0 || overlong) {
    const out: LogLine[] = [];
    finish(Buffer.alloc(0), 0, 0, out);
    if (out.length > 0) yield out;
  }
}
