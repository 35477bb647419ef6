// Owns reading decision logs line by line with bounded memory: plain or gzip (recognised by its magic bytes,
// whatever the file is called), a chunk's lines at a time, an overlong line skipped and reported, never held.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

/** Longer lines are not events Portcullis writes; they are reported, never held in memory whole. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** A line with something on it (stops at the first non-blank character instead of copying the line). */
const NON_BLANK = /\S/;

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

/**
 * The non-empty lines of one log file, handed out a chunk's worth at a time (one await per chunk, not per
 * line). Rejects when the file cannot be read or is corrupt gzip.
 */
export async function* logLines(file: string): AsyncGenerator<LogLine[]> {
  const gzip = await isGzip(file);
  const raw = createReadStream(file, { highWaterMark: 256 * 1024 });
  const input: Readable = gzip ? raw.pipe(createGunzip({ chunkSize: 256 * 1024 })) : raw;
  if (gzip) raw.on('error', (err) => input.destroy(err));
  // Decoded per chunk: a character split across two chunks is completed by the decoder.
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let overlong = false;
  let line = 0;
  const finish = (text: string, out: LogLine[]): void => {
    line++;
    if (overlong) { out.push({ line, text: null }); overlong = false; return; }
    const t = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (NON_BLANK.test(t)) out.push({ line, text: t });
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const text = decoder.write(chunk);
    const out: LogLine[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      finish(pending === '' ? text.slice(start, nl) : pending + text.slice(start, nl), out);
      pending = '';
      start = nl + 1;
    }
    if (!overlong) {
      pending += text.slice(start);
      // Characters, not bytes: a UTF-8 line is at least as long in bytes, so the bound only gets stricter.
      if (pending.length > MAX_LINE_BYTES) { overlong = true; pending = ''; }
    }
    if (out.length > 0) yield out;
  }
  const rest = pending + decoder.end();
  if (rest !== '' || overlong) {
    const out: LogLine[] = [];
    finish(overlong ? '' : rest, out);
    if (out.length > 0) yield out;
  }
}
