// Owns forwarding to an HTTP/1.1 workload through an undici Pool: keep-alive, no pipelining, streaming
// both ways with backpressure (never buffering a whole body). undici Dispatcher API.

import { Pool, type Dispatcher } from 'undici';
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Permit } from '../policy/decision.js';
import type { Exchange } from './exchange.js';
import { cleanResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './respond.js';
import type { ForwardOutcome, Forwarder, UpstreamRequest } from './upstream.js';

export interface H1ForwarderOptions {
  origin: string;
  connectTimeoutMs: number;
  /** Inactivity limit on the response body. */
  bodyTimeoutMs: number;
  connections?: number;
}

/**
 * Whether a downstream that emitted 'close' got the whole response. An HTTP/2 stream whose peer had
 * already ended its side is closed by nghttp2 (NO_ERROR) as soon as our END_STREAM goes out, which
 * can be before 'finish': that is a complete response, not a reset (rstCode 0 after end()).
 */
function closedComplete(dst: Writable): boolean {
  if (dst.writableFinished) return true;
  return dst.writableEnded && (dst as Writable & { rstCode?: number }).rstCode === 0;
}

/** pipe() with a promise: stream/promises.pipeline costs an AbortController and a DOMException per call. */
function relay(src: Readable, dst: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => reject(err instanceof Error ? err : new Error('stream failed'));
    src.once('error', fail);
    dst.once('error', fail);
    dst.once('close', () => { if (closedComplete(dst)) resolve(); else fail(new Error('downstream closed')); });
    dst.once('finish', () => resolve());
    src.pipe(dst);
  });
}

export function createH1Forwarder(options: H1ForwarderOptions): Forwarder {
  const pool = new Pool(options.origin, {
    connections: options.connections ?? 128,
    pipelining: 1,
    connectTimeout: options.connectTimeoutMs,
    keepAliveTimeout: 4_000,
    bodyTimeout: options.bodyTimeoutMs,
  });

  async function forward(permit: Permit, request: UpstreamRequest, ex: Exchange): Promise<ForwardOutcome> {
    void permit;
    // undici accepts an EventEmitter as its abort signal; far cheaper per request than an AbortController.
    const abort = new EventEmitter();
    ex.onAbort(() => abort.emit('abort'));
    const headers: Record<string, string | string[]> = { ...request.headers, host: request.authority };
    let body: Dispatcher.DispatchOptions['body'] = null;
    if (!ex.bodyless) {
      // undici destroys its body stream when done; hand it a pipe so the downstream request (an h2 stream
      // that also carries our response, or an h1 message tied to its socket) stays ours. pipe() keeps backpressure.
      const pipe = new PassThrough({ highWaterMark: 64 * 1024 });
      ex.body.on('error', (err) => pipe.destroy(err));
      body = ex.body.pipe(pipe);
      if (ex.contentLength !== undefined) headers['content-length'] = String(ex.contentLength);
    }
    let response: Dispatcher.ResponseData;
    try {
      ex.continueIfExpected();
      response = await pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path: request.path,
        headers,
        body,
        signal: abort,
        headersTimeout: request.headersTimeoutMs,
        bodyTimeout: options.bodyTimeoutMs,
        // A failed or aborted request never reuses its connection (PC-14).
        reset: false,
      });
    } catch (err) {
      if (ex.aborted) return { ok: true, status: 499, outcome: 'client_aborted' };
      return { ok: false, refusal: classifyUpstreamError(err) };
    }
    const status = response.statusCode;
    const out = cleanResponseHeaders(response.headers as Record<string, string | string[] | undefined>);
    const res = ex.response;
    const noBody = ex.method === 'HEAD' || status === 204 || status === 304;
    try {
      res.start(status, out, { endStream: noBody, trailers: false });
      if (noBody) { response.body.resume(); return { ok: true, status, outcome: 'ok' }; }
      await relay(response.body, res.body);
      return { ok: true, status, outcome: 'ok' };
    } catch {
      response.body.destroy();
      if (ex.aborted) return { ok: true, status, outcome: 'client_aborted' };
      res.abort();
      return { ok: true, status, outcome: 'reset_after_headers' };
    }
  }

  return {
    forward,
    async close() { await pool.close().catch(() => pool.destroy()); },
  };
}
