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
  /** A lease at once when a connected session is ready (no promise); null sends the caller to acquire(). */
  ready?(): H2Lease | null;
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
    ready: () => (lease && !lease.session.closed && !lease.session.destroyed ? lease : null),
    async close() {
      closed = true;
      const s = lease?.session;
      lease = null;
      if (s && !s.closed) await new Promise<void>((r) => { s.close(() => r()); setTimeout(r, 1000).unref(); });
    },
  };
}

const relayOf = Symbol('portcullis.h2Relay');
/** An upstream stream carries its relay, so one set of listener functions serves every stream (no closures per request). */
type RelayedStream = http2.ClientHttp2Stream & { [relayOf]?: H2Relay };

/**
 * One request's relay from an upstream stream to the downstream response: trailers, backpressure, the
 * response-headers deadline and the request body's progress. Settles exactly once with the outcome.
 */
class H2Relay {
  private settled = false;
  private status = 0;
  private trailers: Record<string, string | string[]> | null = null;
  private stopBodyWatch: (() => void) | null = null;
  private timer: NodeJS.Timeout | null;

  constructor(
    private readonly ex: Exchange<unknown>,
    private readonly upstream: http2.ClientHttp2Stream,
    private readonly request: UpstreamRequest,
    /** Announce trailers when the response starts (gRPC, or every response on the outbound listener). */
    private readonly withTrailers: boolean,
    private readonly classify: UpstreamErrorClassifier,
    private readonly resolve: (outcome: ForwardOutcome) => void,
  ) {
    this.timer = setTimeout(onHeadersTimeout, request.headersTimeoutMs, this);
  }

  private finish(outcome: ForwardOutcome): void {
    if (this.settled) return;
    this.settled = true;
    // The stream lets go of its relay (request, exchange, promise): node:http2's churned Map of streams can keep
    // a closed stream reachable through scavenges (see forgetExchange in exchange.ts). Later events find no relay.
    (this.upstream as RelayedStream)[relayOf] = undefined;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    this.stopBodyWatch?.();
    this.resolve(outcome);
  }

  /** Downstream reset → upstream stream cancelled (PC-17). */
  clientAborted(): void {
    resetWithoutEnd(this.upstream);
  }

  /** The caller's body goes upstream as it arrives, ending the stream only when the body is complete. */
  sendBody(): void {
    const { ex, upstream } = this;
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
    // Slow body (limits.bodyTimeout) before the workload answered: the upstream stream is reset without
    // END_STREAM and the caller gets 408.
    this.stopBodyWatch = watchBodyProgress(ex.body, this.request.bodyTimeoutMs, () => {
      if (this.settled) return;
      ex.body.unpipe(upstream);
      resetWithoutEnd(upstream);
      this.finish({ ok: false, refusal: { kind: 'body_timeout' } });
    });
  }

  headersTimedOut(): void {
    this.timer = null;
    if (this.status !== 0) return;
    this.upstream.close(NGHTTP2_CANCEL);
    this.finish({ ok: false, refusal: { kind: 'upstream_timeout' } });
  }

  response(resHeaders: http2.IncomingHttpHeaders, flags: number): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    // The workload answered: a bidirectional stream (gRPC) may now idle in either direction.
    this.stopBodyWatch?.();
    const status = Number(resHeaders[':status'] ?? 502);
    this.status = status;
    const out = cleanResponseHeaders(resHeaders as Record<string, string | string[] | undefined>);
    const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (this.ex.aborted) { this.finish({ ok: true, status, outcome: 'client_aborted' }); return; }
    this.ex.response.start(status, out, { endStream: trailersOnly, trailers: !trailersOnly && this.withTrailers });
    if (trailersOnly) { this.upstream.resume(); this.finish({ ok: true, status, outcome: 'ok', ...grpcStatusOf(this.request.grpc, out) }); }
  }

  trailersArrived(t: http2.IncomingHttpHeaders): void {
    this.trailers = cleanResponseHeaders(t as Record<string, string | string[] | undefined>);
  }

  data(chunk: Buffer): void {
    const res = this.ex.response;
    if (!res.started || this.settled) return;
    if (!res.body.write(chunk)) {
      const upstream = this.upstream;
      upstream.pause();
      res.body.once('drain', () => upstream.resume());
    }
  }

  end(): void {
    if (this.settled || this.status === 0) return;
    const res = this.ex.response;
    if (this.trailers) res.endWithTrailers(this.trailers);
    else res.end();
    this.finish({ ok: true, status: this.status, outcome: 'ok', ...grpcStatusOf(this.request.grpc, this.trailers) });
  }

  error(err: Error): void {
    this.failed(() => this.classify(err));
  }

  closed(): void {
    this.failed(() => ({ kind: this.upstream.rstCode === NGHTTP2_REFUSED_STREAM ? 'upstream_refused' : 'upstream_reset' }));
  }

  /** The upstream stream failed: a refusal before the response started, a reset of the downstream after. */
  private failed(refusal: () => Extract<ForwardOutcome, { ok: false }>['refusal']): void {
    if (this.settled) return;
    const status = this.status;
    if (this.ex.aborted) { this.finish({ ok: true, status: status || 499, outcome: 'client_aborted' }); return; }
    if (status === 0) { this.finish({ ok: false, refusal: refusal() }); return; }
    this.ex.response.abort();
    this.finish({ ok: true, status, outcome: 'reset_after_headers' });
  }
}

function onHeadersTimeout(relay: H2Relay): void { relay.headersTimedOut(); }
function onUpstreamResponse(this: RelayedStream, headers: http2.IncomingHttpHeaders, flags: number): void { this[relayOf]?.response(headers, flags); }
function onUpstreamTrailers(this: RelayedStream, trailers: http2.IncomingHttpHeaders): void { this[relayOf]?.trailersArrived(trailers); }
function onUpstreamData(this: RelayedStream, chunk: Buffer): void { this[relayOf]?.data(chunk); }
function onUpstreamEnd(this: RelayedStream): void { this[relayOf]?.end(); }
function onUpstreamError(this: RelayedStream, err: Error): void { this[relayOf]?.error(err); }
function onUpstreamClose(this: RelayedStream): void { this[relayOf]?.closed(); }

export function createH2Forwarder(options: H2ForwarderOptions): Forwarder {
  const sessions = 'sessions' in options ? options.sessions : oneH2cSession(options.origin, options.connectTimeoutMs);
  const scheme = 'sessions' in options ? options.scheme : 'http';
  const classify = options.classifyError ?? classifyUpstreamError;
  const allTrailers = options.allTrailers === true;

  function forward(permit: Permit, request: UpstreamRequest, ex: Exchange<unknown>): Promise<ForwardOutcome> {
    void permit;
    // A live session is used at once: the usual request costs no promise or microtask hop before its stream opens.
    const ready = sessions.ready?.() ?? null;
    if (ready !== null) return relay(ready, request, ex);
    return sessions.acquire().then((lease) => relay(lease, request, ex), (err: unknown) => ({ ok: false, refusal: classify(err) }));
  }

  function relay(lease: H2Lease, request: UpstreamRequest, ex: Exchange<unknown>): Promise<ForwardOutcome> {
    if (ex.aborted) { lease.release(); return Promise.resolve({ ok: true, status: 499, outcome: 'client_aborted' }); }
    const headers: http2.OutgoingHttpHeaders = request.headers;
    headers[':method'] = request.method;
    headers[':path'] = request.path;
    headers[':authority'] = request.authority;
    headers[':scheme'] = scheme;
    if (request.grpc) headers['te'] = 'trailers';
    let upstream: RelayedStream;
    try {
      upstream = lease.session.request(headers, { endStream: ex.bodyless });
    } catch (err) {
      lease.release();
      return Promise.resolve({ ok: false, refusal: classify(err) });
    }
    if (lease.release !== keep) upstream.once('close', lease.release);
    return new Promise<ForwardOutcome>((resolve) => {
      const r = new H2Relay(ex, upstream, request, allTrailers || request.grpc, classify, resolve);
      upstream[relayOf] = r;
      ex.onAbort(r);
      if (!ex.bodyless) r.sendBody();
      upstream.on('response', onUpstreamResponse);
      upstream.on('trailers', onUpstreamTrailers);
      upstream.on('data', onUpstreamData);
      upstream.on('end', onUpstreamEnd);
      upstream.on('error', onUpstreamError);
      upstream.on('close', onUpstreamClose);
    });
  }

  return { forward, close: () => sessions.close() };
}
