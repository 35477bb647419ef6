// Owns forwarding to an HTTP/2 cleartext (h2c) workload, gRPC included: one reused client session per
// upstream (reconnected when it closes), streams with trailers, cancellation and deadlines (gRPC PROTOCOL-HTTP2).

import * as http2 from 'node:http2';
import type { Permit } from '../policy/decision.js';
import type { Exchange } from './exchange.js';
import { cleanResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './respond.js';
import { watchBodyProgress } from './body-progress.js';
import type { ForwardOutcome, Forwarder, UpstreamRequest } from './upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

export interface H2ForwarderOptions {
  /** `http://host:port` (converted from the listener's `h2c://`). */
  origin: string;
  connectTimeoutMs: number;
}

/** The grpc-status a gRPC workload answered with, for the decision event and the request metrics. */
function grpcStatusOf(grpc: boolean, fields: Record<string, string | string[] | undefined> | null): { grpcStatus?: number } {
  const v = grpc && fields ? fields['grpc-status'] : undefined;
  const n = typeof v === 'string' && /^\d{1,2}$/.test(v) ? Number(v) : undefined;
  return n === undefined ? {} : { grpcStatus: n };
}

/** Whether a downstream body ended because it was complete (h1: llhttp saw the whole message; h2: END_STREAM). */
function bodyComplete(body: NodeJS.ReadableStream): boolean {
  const b = body as NodeJS.ReadableStream & { complete?: boolean; aborted?: boolean };
  if (typeof b.complete === 'boolean') return b.complete;
  return b.aborted !== true;
}

/**
 * RST_STREAM(CANCEL) with no END_STREAM before it. Node's Http2Stream.close() first ends the writable side
 * when it is still open, which queues an empty DATA frame with END_STREAM ahead of the RST: the workload
 * would see a truncated request body as complete. Marking the writable side as ending (without ending it)
 * makes close() send the RST alone. Covered frame by frame by test/integration/attacks.test.ts.
 */
function resetWithoutEnd(stream: http2.ClientHttp2Stream): void {
  if (stream.destroyed || stream.closed) return;
  const state = (stream as unknown as { _writableState?: { ending: boolean } })._writableState;
  if (state && !state.ending) state.ending = true;
  stream.close(NGHTTP2_CANCEL);
}

export function createH2Forwarder(options: H2ForwarderOptions): Forwarder {
  let session: http2.ClientHttp2Session | null = null;
  let connecting: Promise<http2.ClientHttp2Session> | null = null;
  let closed = false;

  function connect(): Promise<http2.ClientHttp2Session> {
    if (session && !session.closed && !session.destroyed) return Promise.resolve(session);
    if (connecting) return connecting;
    connecting = new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const s = http2.connect(options.origin, { settings: { enablePush: false } });
      const timer = setTimeout(() => {
        const err = Object.assign(new Error('upstream connect timeout'), { code: 'ECONNREFUSED' });
        s.destroy(err);
      }, options.connectTimeoutMs);
      const fail = (err: unknown): void => { clearTimeout(timer); connecting = null; reject(err); };
      s.once('error', fail);
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', fail);
        s.on('error', () => { /* each stream reports its own failure */ });
        const forget = (): void => { if (session === s) session = null; };
        s.once('close', forget);
        s.once('goaway', forget);
        session = s;
        connecting = null;
        resolve(s);
      });
    });
    return connecting;
  }

  async function forward(permit: Permit, request: UpstreamRequest, ex: Exchange): Promise<ForwardOutcome> {
    void permit;
    if (closed) return { ok: false, refusal: { kind: 'upstream_refused' } };
    let s: http2.ClientHttp2Session;
    try {
      s = await connect();
    } catch (err) {
      return { ok: false, refusal: classifyUpstreamError(err) };
    }
    if (ex.aborted) return { ok: true, status: 499, outcome: 'client_aborted' };
    const headers: http2.OutgoingHttpHeaders = {
      ...request.headers,
      ':method': request.method,
      ':path': request.path,
      ':authority': request.authority,
      ':scheme': 'http',
    };
    if (request.grpc) headers['te'] = 'trailers';
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = s.request(headers, { endStream: ex.bodyless });
    } catch (err) {
      return { ok: false, refusal: classifyUpstreamError(err) };
    }
    // Downstream reset → upstream stream cancelled (PC-17).
    ex.onAbort(() => resetWithoutEnd(upstream));
    if (!ex.bodyless) {
      ex.continueIfExpected();
      // pipe(), not pipeline(): a failure on one side must not destroy the downstream stream carrying our response.
      ex.body.on('error', () => resetWithoutEnd(upstream));
      // The upstream stream ends only when the downstream body is complete; a body that ends any other way
      // resets it without END_STREAM (never a truncated body presented as complete).
      ex.body.pipe(upstream, { end: false });
      ex.body.once('end', () => {
        if (upstream.destroyed) return;
        if (bodyComplete(ex.body)) upstream.end();
        else resetWithoutEnd(upstream);
      });
    }
    const res = ex.response;
    return new Promise<ForwardOutcome>((resolve) => {
      let settled = false;
      let status = 0;
      let stopBodyWatch: (() => void) | null = null;
      const finish = (o: ForwardOutcome): void => { if (!settled) { settled = true; clearTimeout(timer); stopBodyWatch?.(); resolve(o); } };
      if (!ex.bodyless) {
        // Slow body (limits.bodyTimeout) before the workload answered: the upstream stream is reset without
        // END_STREAM and the caller gets 408.
        stopBodyWatch = watchBodyProgress(ex.body, request.bodyTimeoutMs, () => {
          if (settled) return;
          ex.body.unpipe(upstream);
          resetWithoutEnd(upstream);
          finish({ ok: false, refusal: { kind: 'body_timeout' } });
        });
      }
      const timer = setTimeout(() => {
        if (status !== 0) return;
        upstream.close(NGHTTP2_CANCEL);
        finish({ ok: false, refusal: { kind: 'upstream_timeout' } });
      }, request.headersTimeoutMs);
      upstream.on('response', (resHeaders, flags) => {
        clearTimeout(timer);
        // The workload answered: a bidirectional stream (gRPC) may now idle in either direction.
        stopBodyWatch?.();
        status = Number(resHeaders[':status'] ?? 502);
        const out = cleanResponseHeaders(resHeaders as Record<string, string | string[] | undefined>);
        const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
        if (ex.aborted) { finish({ ok: true, status, outcome: 'client_aborted' }); return; }
        res.start(status, out, { endStream: trailersOnly, trailers: !trailersOnly && request.grpc });
        if (trailersOnly) { upstream.resume(); finish({ ok: true, status, outcome: 'ok', ...grpcStatusOf(request.grpc, out) }); }
      });
      let trailers: Record<string, string | string[]> | null = null;
      upstream.on('trailers', (t) => { trailers = cleanResponseHeaders(t as Record<string, string | string[] | undefined>); });
      upstream.on('data', (chunk: Buffer) => {
        if (!res.started || settled) return;
        if (!res.body.write(chunk)) {
          upstream.pause();
          res.body.once('drain', () => upstream.resume());
        }
      });
      upstream.on('end', () => {
        if (settled || status === 0) return;
        if (trailers) res.endWithTrailers(trailers);
        else res.end();
        finish({ ok: true, status, outcome: 'ok', ...grpcStatusOf(request.grpc, trailers) });
      });
      upstream.on('error', (err) => {
        if (settled) return;
        if (ex.aborted) { finish({ ok: true, status: status || 499, outcome: 'client_aborted' }); return; }
        if (status === 0) {
          finish({ ok: false, refusal: classifyUpstreamError(err) });
          return;
        }
        res.abort();
        finish({ ok: true, status, outcome: 'reset_after_headers' });
      });
      upstream.on('close', () => {
        if (settled) return;
        if (ex.aborted) { finish({ ok: true, status: status || 499, outcome: 'client_aborted' }); return; }
        if (status === 0) {
          const refused = upstream.rstCode === NGHTTP2_REFUSED_STREAM;
          finish({ ok: false, refusal: { kind: refused ? 'upstream_refused' : 'upstream_reset' } });
          return;
        }
        res.abort();
        finish({ ok: true, status, outcome: 'reset_after_headers' });
      });
    });
  }

  return {
    forward,
    async close() {
      closed = true;
      const s = session;
      session = null;
      if (s && !s.closed) await new Promise<void>((r) => { s.close(() => r()); setTimeout(r, 1000).unref(); });
    },
  };
}
