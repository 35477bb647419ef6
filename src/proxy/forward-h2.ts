// Owns forwarding to an HTTP/2 cleartext (h2c) workload, gRPC included: one reused client session per
// upstream (reconnected when it closes), streams with trailers, cancellation and deadlines (gRPC PROTOCOL-HTTP2).

import * as http2 from 'node:http2';
import type { Permit } from '../policy/decision.js';
import type { Exchange } from './exchange.js';
import { cleanResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './respond.js';
import { watchBodyProgress } from './body-progress.js';
import type { ForwardOutcome, Forwarder, UpstreamErrorClassifier, UpstreamRequest } from './upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** A session to open one stream on; `release()` once that stream has closed. */
export interface H2Lease {
  session: http2.ClientHttp2Session;
  release(): void;
}

/** Where upstream streams go: the workload's one h2c session, or the outbound listener's pool of mTLS sessions. */
export interface H2Sessions {
  /** Rejects with the connect (or TLS, identity) failure when no session could be had. */
  acquire(): Promise<H2Lease>;
  close(): Promise<void>;
}

export type H2ForwarderOptions = (
  /** h2c to the workload: `http://host:port` (converted from the listener's `h2c://`), one reused session. */
  | { origin: string; connectTimeoutMs: number }
  | { sessions: H2Sessions; scheme: 'https' }
) & {
  /**
   * Relay trailers of every response, not only gRPC ones (the outbound listener; its callers may use them).
   * An HTTP/2 caller's response must announce them when it starts, which costs a callback per stream.
   */
  allTrailers?: boolean;
  /** Default classifyUpstreamError. */
  classifyError?: UpstreamErrorClassifier;
};

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

const keep = (): void => { /* the one shared session outlives its streams */ };

/** One h2c session to `origin`, reused by every stream and reconnected when it closes or goes away. */
function oneH2cSession(origin: string, connectTimeoutMs: number): H2Sessions {
  let lease: H2Lease | null = null;
  let connecting: Promise<H2Lease> | null = null;
  let closed = false;

  function acquire(): Promise<H2Lease> {
    if (closed) return Promise.reject(Object.assign(new Error('forwarder closed'), { code: 'ECONNREFUSED' }));
    if (lease && !lease.session.closed && !lease.session.destroyed) return Promise.resolve(lease);
    if (connecting) return connecting;
    connecting = new Promise<H2Lease>((resolve, reject) => {
      const s = http2.connect(origin, { settings: { enablePush: false } });
      const timer = setTimeout(() => {
        const err = Object.assign(new Error('upstream connect timeout'), { code: 'ECONNREFUSED' });
        s.destroy(err);
      }, connectTimeoutMs);
      const fail = (err: unknown): void => { clearTimeout(timer); connecting = null; reject(err); };
      s.once('error', fail);
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', fail);
        s.on('error', () => { /* each stream reports its own failure */ });
        const current: H2Lease = { session: s, release: keep };
        const forget = (): void => { if (lease === current) lease = null; };
        s.once('close', forget);
        s.once('goaway', forget);
        lease = current;
        connecting = null;
        resolve(current);
      });
    });
    return connecting;
  }

  return {
    acquire,
    async close() {
      closed = true;
      const s = lease?.session;
      lease = null;
      if (s && !s.closed) await new Promise<void>((r) => { s.close(() => r()); setTimeout(r, 1000).unref(); });
    },
  };
}

export function createH2Forwarder(options: H2ForwarderOptions): Forwarder {
  const sessions = 'sessions' in options ? options.sessions : oneH2cSession(options.origin, options.connectTimeoutMs);
  const scheme = 'sessions' in options ? options.scheme : 'http';
  const classify = options.classifyError ?? classifyUpstreamError;
  const allTrailers = options.allTrailers === true;

  async function forward(permit: Permit, request: UpstreamRequest, ex: Exchange<unknown>): Promise<ForwardOutcome> {
    void permit;
    let lease: H2Lease;
    try {
      lease = await sessions.acquire();
    } catch (err) {
      return { ok: false, refusal: classify(err) };
    }
    if (ex.aborted) { lease.release(); return { ok: true, status: 499, outcome: 'client_aborted' }; }
    const headers: http2.OutgoingHttpHeaders = {
      ...request.headers,
      ':method': request.method,
      ':path': request.path,
      ':authority': request.authority,
      ':scheme': scheme,
    };
    if (request.grpc) headers['te'] = 'trailers';
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = lease.session.request(headers, { endStream: ex.bodyless });
    } catch (err) {
      lease.release();
      return { ok: false, refusal: classify(err) };
    }
    if (lease.release !== keep) upstream.once('close', lease.release);
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
        res.start(status, out, { endStream: trailersOnly, trailers: !trailersOnly && (request.grpc || allTrailers) });
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
          finish({ ok: false, refusal: classify(err) });
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

  return { forward, close: () => sessions.close() };
}
