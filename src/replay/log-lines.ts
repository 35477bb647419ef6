// Owns reading decision logs line by line with bounded memory: plain or gzip (recognised by its magic bytes,
// whatever the file is called), one line at a time, an overlong line skipped and reported instead of buffered.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

/** Longer lines are not events Portcullis writes; they are reported, never held in memory whole. */
export const MAX_LINE_BYTES = 1024 * 1024;

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

/** The lines of one log file (empty lines skipped). Rejects when the file cannot be read or is corrupt gzip. */
export async function* logLines(file: string): AsyncGenerator<LogLine> {
  const gzip = await isGzip(file);
  const raw = createReadStream(file, { highWaterMark: 256 * 1024 });
  const input: Readable = gzip ? raw.pipe(createGunzip()) : raw;
  if (gzip) raw.on('error', (err) => input.destroy(err));
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  let line = 0;
  const take = (): LogLine | null => {
    line++;
    const text = overlong ? null : pending.length === 1 ? (pending[0] as Buffer).toString('utf8') : Buffer.concat(pending, pendingBytes).toString('utf8');
    pending = []; pendingBytes = 0; overlong = false;
    if (text !== null && text.trim() === '') return null;
    return { line, text: text === null ? null : text.endsWith('\r') ? text.slice(0, -1) : text };
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      if (!overlong) {
        if (pendingBytes + (nl - start) > MAX_LINE_BYTES) { overlong = true; pending = []; pendingBytes = 0; }
        else { pending.push(chunk.subarray(start, nl)); pendingBytes += nl - start; }
      }
      const got = take();
      if (got) yield got;
      start = nl + 1;
    }
    if (start < chunk.length && !overlong) {
      if (pendingBytes + (chunk.length - start) > MAX_LINE_BYTES) { overlong = true; pending = []; pendingBytes = 0; }
      // Copied: the stream may reuse its buffer for the next chunk.
      else { pending.push(Buffer.from(chunk.subarray(start))); pendingBytes += chunk.length - start; }
    }
  }
  if (pendingBytes > 0 || overlong) {
    const got = take();
    if (got) yield got;
  }
}
