// Owns forwarding to an HTTP/1.1 workload through an undici Pool: keep-alive, no pipelining, streaming
// both ways with backpressure (never buffering a whole body). undici Dispatcher API (dispatch + handler).

import type { Dispatcher, buildConnector } from 'undici';
import { Pool } from './undici-parts.js';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Permit } from '../policy/decision.js';
import type { Exchange } from './exchange.js';
import { cleanRawResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './respond.js';
import { BodyIdleClock } from './body-progress.js';
import { DeadlineQueue } from './deadline-queue.js';
import { ResponseWait } from './response-wait.js';
import type { ForwardOutcome, Forwarder, UpstreamErrorClassifier, UpstreamRequest } from './upstream.js';

export interface H1ForwarderOptions {
  /** `http://host:port` (the workload), or `https://host:port` with `connect` (an outbound destination). */
  origin: string;
  connectTimeoutMs: number;
  /** Inactivity limit on the response body; 0: none. */
  bodyTimeoutMs: number;
  connections?: number;
  /** Opens each upstream connection (default: plain TCP with connectTimeoutMs); outbound's does mTLS. */
  connect?: buildConnector.connector;
  /** Default classifyUpstreamError. */
  classifyError?: UpstreamErrorClassifier;
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

class ClientAbortedError extends Error {
  constructor() { super('client aborted'); this.name = 'ClientAbortedError'; }
}

class UpstreamHeadersTimeoutError extends Error {
  constructor() { super('upstream response headers timeout'); this.name = 'UpstreamHeadersTimeoutError'; }
}

class BodyTimeoutError extends Error {
  constructor() { super('request body timeout'); this.name = 'BodyTimeoutError'; }
}

const relayOf = Symbol('portcullis.h1Relay');
/** While the response streams, the downstream body carries its relay: one set of listener functions serves every request. */
type RelayedBody = Writable & { [relayOf]?: RelayHandler | undefined };
function onBodyDrain(this: RelayedBody): void { this[relayOf]?.drained(); }
function onBodyClose(this: RelayedBody): void { this[relayOf]?.downstreamClosed(); }
function onBodyFinish(this: RelayedBody): void { this[relayOf]?.finished(); }
/** While the request body is forwarded, it carries its relay too (its progress is the relay's business). */
type WatchedBody = Readable & { [relayOf]?: RelayHandler | undefined };
function onRequestProgress(this: WatchedBody): void { this[relayOf]?.bodyProgressed(); }
function onRequestBodyDone(this: WatchedBody): void { this[relayOf]?.stopBodyWatch(); }

/**
 * One request's undici handler: writes the workload's response straight into the downstream response
 * (no response Readable, no pipe, no promise per chunk). Returning false from onData pauses the
 * upstream socket until the downstream drains. Settles exactly once with the outcome.
 * The limits before the response are ResponseWait's, as in the HTTP/2 relay.
 */
class RelayHandler extends ResponseWait implements Dispatcher.DispatchHandler {
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private status = 0;
  private headersSent = false;
  private done = false;
  /** The forwarded request body's idle clock, and the pipe it goes upstream through, while it is watched. */
  private bodyClock: BodyIdleClock | null = null;
  private upstreamBody: PassThrough | null = null;
  private readonly bodyTimeoutMs: number;

  constructor(private readonly ex: Exchange<unknown>, private readonly resolve: (outcome: ForwardOutcome) => void, request: UpstreamRequest, private readonly classify: UpstreamErrorClassifier, deadlines: DeadlineQueue) {
    super(request.headersTimeoutMs, request.deadlineMs, deadlines);
    this.bodyTimeoutMs = request.bodyTimeoutMs;
    ex.onAbort(this);
  }

  /**
   * Starts the limits before the response. A request body going upstream through `upstreamBody` is watched until
   * it ends, the response starts or the exchange settles: a caller that delivers nothing for limits.bodyTimeout
   * (0: no limit) is cut (PC-20).
   */
  begin(upstreamBody: PassThrough | null): void {
    if (upstreamBody !== null) this.watchBody(upstreamBody);
    this.checkLimits();
  }

  private watchBody(upstreamBody: PassThrough): void {
    this.bodyClock = new BodyIdleClock();
    this.upstreamBody = upstreamBody;
    const body = this.ex.body as WatchedBody;
    body[relayOf] = this;
    body.on('data', onRequestProgress);
    body.on('resume', onRequestProgress);
    body.once('end', onRequestBodyDone);
    body.once('close', onRequestBodyDone);
  }

  /** A request body chunk arrived (or the body flows again): the body is not idle, and undici's rule restarts the headers' limit. */
  bodyProgressed(): void {
    const now = performance.now();
    this.bodyClock?.progressed(now);
    this.requestProgressed(now);
  }

  stopBodyWatch(): void {
    if (this.bodyClock === null) return;
    this.bodyClock = null;
    const body = this.ex.body as WatchedBody;
    body.off('data', onRequestProgress);
    body.off('resume', onRequestProgress);
    body.off('end', onRequestBodyDone);
    body.off('close', onRequestBodyDone);
    body[relayOf] = undefined;
  }

  drained(): void { this.resumeUpstream?.(); }

  downstreamClosed(): void {
    if (this.done) return;
    if (closedComplete(this.ex.response.body)) this.settle({ ok: true, status: this.status, outcome: 'ok' });
    else this.failDownstream();
  }

  finished(): void { this.settle({ ok: true, status: this.status, outcome: 'ok' }); }

  private settle(outcome: ForwardOutcome): void {
    if (this.done) return;
    this.done = true;
    this.stopBodyWatch();
    this.deadlines.cancel(this);
    if (this.headersSent) {
      const body = this.ex.response.body as RelayedBody;
      body.off('drain', onBodyDrain);
      body.off('close', onBodyClose);
      body.off('finish', onBodyFinish);
      body[relayOf] = undefined;
    }
    this.resolve(outcome);
  }

  clientAborted(): void {
    if (this.done) return;
    this.settle({ ok: true, status: this.headersSent ? this.status : 499, outcome: 'client_aborted' });
    this.abortUpstream?.(new ClientAbortedError());
  }

  /**
   * The caller stopped sending its body (limits.bodyTimeout) before the workload answered: the upstream
   * request is aborted, so the workload sees a reset connection and never a complete request; the caller gets 408.
   */
  protected bodyStalled(): void {
    const upstreamBody = this.upstreamBody as PassThrough;
    this.settle({ ok: false, refusal: { kind: 'body_timeout' } });
    this.ex.body.unpipe(upstreamBody);
    upstreamBody.destroy(new BodyTimeoutError());
    this.abortUpstream?.(new BodyTimeoutError());
  }

  /** The downstream failed after the response started without the client going away: reset it. */
  private failDownstream(): void {
    if (this.done) return;
    if (this.ex.aborted) { this.clientAborted(); return; }
    this.settle({ ok: true, status: this.status, outcome: 'reset_after_headers' });
    this.abortUpstream?.(new ClientAbortedError());
    this.ex.response.abort();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) { abort(new ClientAbortedError()); return; }
    // The response-headers deadline is ours, not undici's: undici runs timeouts of a second or more on a
    // 500 ms tick (a 1 s limit fired at 1.5 s). Like undici's, it starts when the request is written and
    // restarts on every body chunk sent, so a long upload is not cut while it progresses.
    this.requestWritten(performance.now());
    this.checkLimits();
  }

  deadlineReached(): void {
    if (this.done || this.headersSent) return;
    this.checkLimits();
  }

  protected bodyIdleLeftMs(now: number): number {
    const clock = this.bodyClock;
    return clock !== null && this.bodyTimeoutMs > 0 ? clock.idleLeftMs(this.ex.body, now, this.bodyTimeoutMs) : Number.POSITIVE_INFINITY;
  }

  protected answerOverdue(): void {
    this.settle({ ok: false, refusal: { kind: 'upstream_timeout' } });
    this.abortUpstream?.(new UpstreamHeadersTimeoutError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.done) return false;
    // 1xx informational responses are not relayed (as before: undici's request API skips them too).
    if (statusCode < 200) return true;
    this.deadlines.cancel(this);
    // The workload answered: from here the exchange is live (a bidirectional stream may idle legitimately),
    // and the caller's pauses are no longer a slow body holding a request hostage.
    this.stopBodyWatch();
    this.status = statusCode;
    this.resumeUpstream = resume;
    const ex = this.ex;
    const noBody = ex.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    this.headersSent = true;
    const body = ex.response.body as RelayedBody;
    try {
      ex.response.start(statusCode, cleanRawResponseHeaders(rawHeaders), { endStream: noBody, trailers: false });
    } catch {
      this.failDownstream();
      return false;
    }
    if (noBody) {
      this.settle({ ok: true, status: statusCode, outcome: 'ok' });
      return true;
    }
    body[relayOf] = this;
    body.on('close', onBodyClose);
    body.on('finish', onBodyFinish);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return true; // a HEAD/204/304 answer: whatever arrives is discarded
    const body = this.ex.response.body;
    if (body.write(chunk)) return true;
    body.once('drain', onBodyDrain);
    return false;
  }

  onComplete(trailers: string[] | null): void {
    if (this.done) return;
    // Settles on 'finish' (everything handed to the downstream transport), as the piped relay did.
    // Chunked trailers go on to an HTTP/1.1 caller (an h2 stream would have had to announce them at start).
    if (trailers && trailers.length > 0 && this.ex.httpVersion === '1.1') this.ex.response.endWithTrailers(cleanRawResponseHeaders(trailers));
    else this.ex.response.body.end();
  }

  onError(err: Error): void {
    if (this.done) return;
    if (this.ex.aborted) { this.clientAborted(); return; }
    if (!this.headersSent) { this.settle({ ok: false, refusal: this.classify(err) }); return; }
    this.settle({ ok: true, status: this.status, outcome: 'reset_after_headers' });
    this.ex.response.abort();
  }
}

export function createH1Forwarder(options: H1ForwarderOptions): Forwarder {
  const classify = options.classifyError ?? classifyUpstreamError;
  const pool = new Pool(options.origin, {
    connections: options.connections ?? 128,
    pipelining: 1,
    ...(options.connect ? { connect: options.connect } : { connectTimeout: options.connectTimeoutMs }),
    keepAliveTimeout: 4_000,
    bodyTimeout: options.bodyTimeoutMs,
  });
  const deadlines = new DeadlineQueue();

  function forward(permit: Permit, request: UpstreamRequest, ex: Exchange<unknown>): Promise<ForwardOutcome> {
    void permit;
    const headers = request.headers;
    headers['host'] = request.authority;
    let body: Dispatcher.DispatchOptions['body'] = null;
    let pipe: PassThrough | null = null;
    if (!ex.bodyless) {
      // undici destroys its body stream when done; hand it a pipe so the downstream request (an h2 stream
      // that also carries our response, or an h1 message tied to its socket) stays ours. pipe() keeps backpressure.
      const upstreamBody = new PassThrough({ highWaterMark: 64 * 1024 });
      ex.body.on('error', (err) => upstreamBody.destroy(err));
      body = ex.body.pipe(upstreamBody);
      pipe = upstreamBody;
      if (ex.contentLength !== undefined) headers['content-length'] = String(ex.contentLength);
    }
    return new Promise<ForwardOutcome>((resolve) => {
      const handler = new RelayHandler(ex, resolve, request, classify, deadlines);
      handler.begin(pipe);
      try {
        ex.continueIfExpected();
        pool.dispatch({
          origin: options.origin,
          method: request.method as Dispatcher.HttpMethod,
          path: request.path,
          headers,
          body,
          // 0: undici's own response-headers timer is off; RelayHandler keeps a precise one.
          headersTimeout: 0,
          bodyTimeout: options.bodyTimeoutMs,
          // A failed or aborted request never reuses its connection (PC-14).
          reset: false,
        }, handler);
      } catch (err) {
        handler.onError(err instanceof Error ? err : new Error('dispatch failed'));
      }
    });
  }

  return {
    forward,
    async close() {
      deadlines.clear();
      await pool.close().catch(() => pool.destroy());
    },
  };
}
