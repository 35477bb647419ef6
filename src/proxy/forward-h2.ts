// Owns forwarding to an HTTP/2 cleartext (h2c) workload, gRPC included: one reused client session per
// upstream (reconnected when it closes), streams with trailers, cancellation and deadlines (gRPC PROTOCOL-HTTP2).

import * as http2 from 'node:http2';
import type { Readable } from 'node:stream';
import type { Permit } from '../policy/decision.js';
import type { Exchange } from './exchange.js';
import { cleanResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './respond.js';
import { DeadlineQueue } from './deadline-queue.js';
import { ResponseWait } from './response-wait.js';
import { BodyIdleClock } from './body-progress.js';
import { useScavengeFriendlyAsyncBind } from './async-resource-bind.js';
import type { ForwardOutcome, Forwarder, UpstreamErrorClassifier, UpstreamRequest } from './upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The options ClientHttp2Session#request reads, `silent` (read by node, not in its types) included. */
type FullRequestOptions = Required<Pick<http2.ClientSessionRequestOptions, 'endStream' | 'waitForTrailers'>>
  & Pick<http2.ClientSessionRequestOptions, 'signal' | 'parent' | 'weight' | 'exclusive'> & { silent: boolean | undefined };

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
type RelayedStream = http2.ClientHttp2Stream & { [relayOf]?: H2Relay; [forwardOf]?: H2BodyForward };
const forwardOf = Symbol('portcullis.h2BodyForward');
/** A caller's body (and, while it waits for 'drain', the upstream stream) carries its forward, as streams carry their relay. */
type ForwardedBody = Readable & { [forwardOf]?: H2BodyForward };

/**
 * The caller's request body on its way to the upstream stream, chunk by chunk with backpressure, as pipe() would
 * carry it but through listener functions shared by every request: a pipe() and a progress watch cost about a
 * dozen listeners and closures per request. The upstream stream ends only when the body is complete; a body that
 * ends any other way resets it without END_STREAM (never a truncated body presented as complete). It and its
 * relay let go of each other when the body is no longer read or the exchange settled, whichever is first: the
 * forward then dies young, and a body still open after the exchange settled keeps nothing else alive.
 */
class H2BodyForward extends BodyIdleClock {
  /** Whether the body is still being read: until it ended, failed, or was stopped or left behind. */
  reading = true;

  constructor(private readonly body: ForwardedBody, private readonly upstream: RelayedStream, public relay: H2Relay | null) {
    super();
    body[forwardOf] = this;
    body.on('data', onBodyData);
    body.on('end', onBodyEnd);
    body.on('error', onBodyError);
  }

  /** Milliseconds left before the body has been idle for `timeoutMs` (BodyIdleClock). */
  bodyIdleLeftMs(now: number, timeoutMs: number): number {
    return this.idleLeftMs(this.body, now, timeoutMs);
  }

  data(chunk: Buffer): void {
    const upstream = this.upstream;
    // The upstream stream is gone: stop, and leave the rest unread, as pipe() does when its destination closes.
    if (upstream.destroyed || upstream.writableEnded) { this.detach(); this.body.pause(); return; }
    const now = performance.now();
    this.progressed(now);
    this.relay?.requestProgressed(now);
    if (!upstream.write(chunk)) {
      this.body.pause();
      upstream[forwardOf] = this;
      upstream.once('drain', onUpstreamDrain);
    }
  }

  drained(): void {
    this.upstream[forwardOf] = undefined;
    if (!this.reading) return;
    const now = performance.now();
    this.progressed(now);
    this.relay?.requestProgressed(now);
    this.body.resume();
  }

  ended(): void {
    this.detach();
    const upstream = this.upstream;
    if (upstream.destroyed) return;
    if (bodyComplete(this.body)) upstream.end();
    else resetWithoutEnd(upstream);
  }

  failed(): void {
    this.detach();
    resetWithoutEnd(this.upstream);
  }

  /** Stops forwarding; the body is left paused (a slow body that was cut, or an upstream that went away). */
  stop(): void {
    this.detach();
    this.body.pause();
  }

  private detach(): void {
    if (!this.reading) return;
    this.reading = false;
    this.relay?.bodyDone();
    this.relay = null;
    const body = this.body;
    body[forwardOf] = undefined;
    body.off('data', onBodyData);
    body.off('end', onBodyEnd);
    body.off('error', onBodyError);
  }
}

function onBodyData(this: ForwardedBody, chunk: Buffer): void { this[forwardOf]?.data(chunk); }
function onBodyEnd(this: ForwardedBody): void { this[forwardOf]?.ended(); }
function onBodyError(this: ForwardedBody): void { this[forwardOf]?.failed(); }
function onUpstreamDrain(this: RelayedStream): void { this[forwardOf]?.drained(); }

/**
 * One request's relay from an upstream stream to the downstream response: trailers, backpressure, and the limits
 * before the response (ResponseWait's, as in the HTTP/1.1 relay). Settles exactly once with the outcome.
 */
class H2Relay extends ResponseWait {
  private settled = false;
  private status = 0;
  private trailers: Record<string, string | string[]> | null = null;
  private forwardBody: H2BodyForward | null = null;

  constructor(
    private readonly ex: Exchange<unknown>,
    private readonly upstream: http2.ClientHttp2Stream,
    private readonly request: UpstreamRequest,
    /** Announce trailers when the response starts (gRPC, or every response on the outbound listener). */
    private readonly withTrailers: boolean,
    private readonly classify: UpstreamErrorClassifier,
    private readonly resolve: (outcome: ForwardOutcome) => void,
    deadlines: DeadlineQueue,
  ) {
    super(request.headersTimeoutMs, request.deadlineMs, deadlines);
    // The stream is open: the request is written as far as the wait for its answer goes.
    this.requestWritten(performance.now());
  }

  /** The body is no longer read: its forward is let go (H2BodyForward). */
  bodyDone(): void {
    this.forwardBody = null;
  }

  /** Sends the caller's body (if any) and arms the deadlines. */
  start(): void {
    const ex = this.ex;
    if (!ex.bodyless) {
      ex.continueIfExpected();
      this.forwardBody = new H2BodyForward(ex.body, this.upstream, this);
    }
    this.checkLimits();
  }

  private finish(outcome: ForwardOutcome): void {
    if (this.settled) return;
    this.settled = true;
    // The stream lets go of its relay (request, exchange, promise): node:http2's churned Map of streams can keep
    // a closed stream reachable through scavenges (see forgetExchange in exchange.ts). Later events find no relay.
    (this.upstream as RelayedStream)[relayOf] = undefined;
    if (this.forwardBody !== null) { this.forwardBody.relay = null; this.forwardBody = null; }
    this.deadlines.cancel(this);
    this.resolve(outcome);
  }

  /** Downstream reset → upstream stream cancelled (PC-17). */
  clientAborted(): void {
    resetWithoutEnd(this.upstream);
  }

  deadlineReached(): void {
    if (this.settled || this.status !== 0) return;
    this.checkLimits();
  }

  protected bodyIdleLeftMs(now: number): number {
    const body = this.forwardBody;
    const bodyTimeoutMs = this.request.bodyTimeoutMs;
    return body !== null && bodyTimeoutMs > 0 ? body.bodyIdleLeftMs(now, bodyTimeoutMs) : Number.POSITIVE_INFINITY;
  }

  /** The caller's body stalled: the upstream stream is reset without END_STREAM, never ended as if complete. */
  protected bodyStalled(): void {
    (this.forwardBody as H2BodyForward).stop();
    resetWithoutEnd(this.upstream);
    this.finish({ ok: false, refusal: { kind: 'body_timeout' } });
  }

  protected answerOverdue(): void {
    this.upstream.close(NGHTTP2_CANCEL);
    this.finish({ ok: false, refusal: { kind: 'upstream_timeout' } });
  }

  response(resHeaders: http2.IncomingHttpHeaders, flags: number): void {
    // The workload answered: a bidirectional stream (gRPC) may now idle in either direction.
    this.deadlines.cancel(this);
    const status = Number(resHeaders[':status'] ?? 502);
    this.status = status;
    const out = cleanResponseHeaders(resHeaders as Record<string, string | string[] | undefined>);
    const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (this.ex.aborted) { this.finish({ ok: true, status, outcome: 'client_aborted' }); return; }
    this.ex.response.start(status, out, { endStream: trailersOnly, trailers: !trailersOnly && this.withTrailers });
    if (trailersOnly) { this.upstream.resume(); this.finish({ ok: true, status, outcome: 'ok', ...grpcStatusOf(this.request.grpc, out) }); return; }
    // The body is read from here on, never before: node:http2 emits 'response' on a later tick than the one that
    // parsed the HEADERS, and when HEADERS and DATA are parsed in one pass (seen over TLS under load), a stream
    // already flowing emits its DATA first. Until now the stream stays paused and holds what arrived.
    this.upstream.on('data', onUpstreamData);
  }

  trailersArrived(t: http2.IncomingHttpHeaders): void {
    this.trailers = cleanResponseHeaders(t as Record<string, string | string[] | undefined>);
  }

  data(chunk: Buffer): void {
    // Read only once the response started (response()); after the exchange settled, what arrives is dropped.
    if (this.settled) return;
    const res = this.ex.response;
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

function onUpstreamResponse(this: RelayedStream, headers: http2.IncomingHttpHeaders, flags: number): void { this[relayOf]?.response(headers, flags); }
function onUpstreamTrailers(this: RelayedStream, trailers: http2.IncomingHttpHeaders): void { this[relayOf]?.trailersArrived(trailers); }
function onUpstreamData(this: RelayedStream, chunk: Buffer): void { this[relayOf]?.data(chunk); }
function onUpstreamEnd(this: RelayedStream): void { this[relayOf]?.end(); }
function onUpstreamError(this: RelayedStream, err: Error): void { this[relayOf]?.error(err); }
function onUpstreamClose(this: RelayedStream): void { this[relayOf]?.closed(); }

export function createH2Forwarder(options: H2ForwarderOptions): Forwarder {
  // Every upstream request goes through ClientHttp2Session.request(), which binds it with AsyncResource (see there).
  useScavengeFriendlyAsyncBind();
  const sessions = 'sessions' in options ? options.sessions : oneH2cSession(options.origin, options.connectTimeoutMs);
  const scheme = 'sessions' in options ? options.scheme : 'http';
  const classify = options.classifyError ?? classifyUpstreamError;
  const allTrailers = options.allTrailers === true;
  const deadlines = new DeadlineQueue();

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
      // Every option node:http2 reads or defaults is present: it spreads the options into a new object and then
      // adds the ones missing, and on that copy each addition built a new map and missed every inline cache,
      // on every request (loadtest/v8-shapes.mjs). undefined keeps node's defaults.
      const options: FullRequestOptions = {
        endStream: ex.bodyless, waitForTrailers: false, signal: undefined, parent: undefined, weight: undefined, exclusive: undefined, silent: undefined,
      };
      upstream = lease.session.request(headers, options);
    } catch (err) {
      lease.release();
      return Promise.resolve({ ok: false, refusal: classify(err) });
    }
    if (lease.release !== keep) upstream.once('close', lease.release);
    return new Promise<ForwardOutcome>((resolve) => {
      const r = new H2Relay(ex, upstream, request, allTrailers || request.grpc, classify, resolve, deadlines);
      upstream[relayOf] = r;
      ex.onAbort(r);
      r.start();
      upstream.on('response', onUpstreamResponse);
      upstream.on('trailers', onUpstreamTrailers);
      // 'data' only once the response started (response()).
      upstream.on('end', onUpstreamEnd);
      upstream.on('error', onUpstreamError);
      upstream.on('close', onUpstreamClose);
    });
  }

  return {
    forward,
    close: () => {
      deadlines.clear();
      return sessions.close();
    },
  };
}
