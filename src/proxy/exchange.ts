// Owns the transport-neutral view of one downstream request/response (HTTP/1.1 or HTTP/2 stream), so
// stages and forwarders never branch on the downstream protocol. Renders respond.ts replies (incl. gRPC trailers-only).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2c, type ServerHttp2Stream } from 'node:http2';
import type { Readable, Writable } from 'node:stream';
import type { ConnectionInfo } from './types.js';
import { encodeGrpcMessage, type Reply } from './respond.js';
import { connectionHeaders } from './headers.js';

export type OutHeaders = Record<string, string | string[]>;

export interface DownstreamResponse {
  readonly started: boolean;
  /** `trailers`: the response will end with trailers (h2: waitForTrailers). */
  start(status: number, headers: OutHeaders, options: { endStream: boolean; trailers: boolean }): void;
  readonly body: Writable;
  /** Ends the response with trailers (h1: chunked trailers; h2: a trailing HEADERS frame). */
  endWithTrailers(trailers: OutHeaders): void;
  end(): void;
  /** Abrupt end after a mid-stream upstream failure: h1 closes the connection, h2 resets the stream. */
  abort(): void;
}

/**
 * `Conn`: what the listener knows about the connection (the inbound listeners' ConnectionInfo; the
 * outbound listener's own). Forwarders take `Exchange<unknown>`: they never look at it.
 */
export interface Exchange<Conn = ConnectionInfo> {
  readonly conn: Conn;
  readonly httpVersion: '1.1' | '2';
  readonly method: string;
  /** The request target exactly as sent (origin-form, absolute-form or `*`). */
  readonly target: string;
  /** Flat [name, value, ...] as received; h2 includes pseudo-headers. */
  readonly rawHeaders: readonly string[];
  readonly body: Readable;
  /** Validated by the codec (llhttp / nghttp2); undefined when the body is chunked or absent. */
  readonly contentLength: number | undefined;
  /** True when the request cannot carry a body (h1 without length/chunking, h2 END_STREAM on HEADERS). */
  readonly bodyless: boolean;
  /** An HTTP/1.1 `Upgrade` request handed over by Node with its raw socket (WebSocket). */
  readonly isUpgrade?: boolean;
  /**
   * HTTP/1.x framing the codec accepted but Portcullis refuses (RFC 9112 §6.1): a Transfer-Encoding on an
   * HTTP/1.0 request (faulty framing), or a transfer coding other than `chunked`, which the workload would
   * read differently once Portcullis re-frames the body.
   */
  readonly framingError?: 'http10_transfer_encoding' | 'unsupported_transfer_coding';
  readonly response: DownstreamResponse;
  /** Told once if the client goes away (h1 socket close, h2 RST_STREAM) before the response ended. */
  onAbort(listener: AbortListener): void;
  readonly aborted: boolean;
  /** Sends `100 Continue` if the client asked for it; only after a permit (PC-15). */
  continueIfExpected(): void;
  /** Ask the client to close the connection after this response (drain). */
  closeAfterResponse(): void;
}

/** What a forwarder registers with onAbort: an object it already has, so no closure is made per request. */
export interface AbortListener {
  clientAborted(): void;
}

/** Renders a synthetic reply: gRPC callers get HTTP 200 trailers-only with grpc-status / grpc-message. */
export function sendReply(ex: Exchange<unknown>, reply: Reply, grpc: boolean): number {
  const res = ex.response;
  if (res.started) { res.abort(); return reply.status; }
  if (grpc) {
    const message = reply.grpcMessage === undefined ? reply.body : reply.grpcMessage;
    res.start(200, {
      'content-type': 'application/grpc',
      'grpc-status': String(reply.grpcStatus),
      ...(message !== null ? { 'grpc-message': encodeGrpcMessage(message) } : {}),
      ...reply.headers,
    }, { endStream: true, trailers: false });
    return 200;
  }
  const body = Buffer.from(reply.body, 'utf8');
  // An empty body (Linkerd's 403/404/429, redirects) carries no content-type, only `content-length: 0`.
  const headers: OutHeaders = { ...reply.headers, ...(body.length > 0 ? { 'content-type': 'text/plain' } : {}), 'content-length': String(body.length) };
  const head = ex.method === 'HEAD' || body.length === 0;
  res.start(reply.status, headers, { endStream: head, trailers: false });
  if (!head) res.body.end(body);
  return reply.status;
}

// Exchanges are classes, not object literals with accessors: a literal with `get` accessors becomes a
// dictionary-mode object with fresh closures per request, which kept every request's req/res/listeners
// alive through scavenges (promoted to old space). Listeners are shared functions that find their
// exchange through one symbol-keyed slot on the emitter.

const kExchange = Symbol('portcullis.exchange');
type WithExchange = { [kExchange]?: AbortableExchange };

/** Abort bookkeeping shared by every exchange kind: at most one listener list, allocated on demand. */
export abstract class AbortableExchange {
  aborted = false;
  private abortListeners: AbortListener[] | null = null;

  onAbort(listener: AbortListener): void {
    (this.abortListeners ??= []).push(listener);
  }

  protected fireAbort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.abortListeners;
    if (listeners) for (const l of listeners) l.clientAborted();
  }

  /** Called by the shared emitter listeners below. */
  abstract onTransportAbort(): void;
}

/** Installed as an emitter listener (no per-request closure); `exchangeOf` must have been attached. */
export function onTransportAbort(this: WithExchange): void {
  this[kExchange]?.onTransportAbort();
}
/** Attaches `ex` to an emitter so the shared listeners above can find it. */
export function attachExchange(emitter: object, ex: AbortableExchange): void {
  (emitter as WithExchange)[kExchange] = ex;
}
export function ignoreError(): void { /* surfaced as 'aborted'/'close'; never crash the process */ }
/**
 * A closed HTTP/2 stream lets go of its exchange. node:http2 keeps each session's streams in a Map that gains and
 * loses one per stream, so a stream can stay reachable from an outgrown table of it through scavenges (the chain
 * docs/loadtest.md's fourth round describes); what it points at would be promoted with it.
 */
function forgetExchange(this: WithExchange): void {
  this[kExchange] = undefined;
}

// === HTTP/1.1 ===

const expectContinue = /100-continue/i;

class H1Response implements DownstreamResponse {
  closeAfter = false;
  readonly body: Writable;
  constructor(private readonly res: ServerResponse) { this.body = res; }
  get started(): boolean { return this.res.headersSent; }
  start(status: number, headers: OutHeaders, options: { endStream: boolean; trailers: boolean }): void {
    if (this.closeAfter) headers = { ...headers, connection: 'close' };
    this.res.writeHead(status, headers);
    if (options.endStream) this.res.end();
  }
  endWithTrailers(trailers: OutHeaders): void {
    this.res.addTrailers(trailers as Record<string, string>);
    this.res.end();
  }
  end(): void { this.res.end(); }
  abort(): void { this.res.destroy(); }
}

class H1Exchange<Conn> extends AbortableExchange implements Exchange<Conn> {
  readonly httpVersion = '1.1' as const;
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly body: Readable;
  readonly contentLength: number | undefined;
  readonly bodyless: boolean;
  readonly framingError?: 'http10_transfer_encoding' | 'unsupported_transfer_coding';
  readonly response: H1Response;

  constructor(readonly conn: Conn, private readonly req: IncomingMessage, private readonly res: ServerResponse) {
    super();
    this.method = req.method ?? '';
    this.target = req.url ?? '';
    this.rawHeaders = req.rawHeaders;
    this.body = req;
    const lengthHeader = req.headers['content-length'];
    this.contentLength = lengthHeader !== undefined ? Number(lengthHeader) : undefined;
    const transferEncoding = req.headers['transfer-encoding'];
    const chunked = transferEncoding !== undefined;
    this.bodyless = !chunked && (this.contentLength === undefined || this.contentLength === 0);
    if (chunked) {
      if (req.httpVersionMinor === 0) this.framingError = 'http10_transfer_encoding';
      else if (transferEncoding.trim().toLowerCase() !== 'chunked') this.framingError = 'unsupported_transfer_coding';
    }
    this.response = new H1Response(res);
    (res as WithExchange)[kExchange] = this;
    (req as WithExchange)[kExchange] = this;
    res.on('close', onTransportAbort);
    req.on('aborted', onTransportAbort);
  }

  onTransportAbort(): void {
    // A response that finished was not aborted, whatever the socket does afterwards.
    if (!this.res.writableFinished) this.fireAbort();
  }

  continueIfExpected(): void {
    const expect = this.req.headers.expect;
    if (expect !== undefined && expectContinue.test(expect) && !this.res.headersSent) this.res.writeContinue();
  }

  closeAfterResponse(): void {
    this.response.closeAfter = true;
    this.res.shouldKeepAlive = false;
  }
}

export function h1Exchange<Conn = ConnectionInfo>(conn: Conn, req: IncomingMessage, res: ServerResponse): Exchange<Conn> {
  return new H1Exchange(conn, req, res);
}

// === HTTP/2 ===

/** Connection-specific headers are malformed on HTTP/2 (RFC 9113 §8.2.2): headers.ts's one hop-by-hop set. */
const forbiddenH2 = connectionHeaders;

function h2Headers(headers: OutHeaders): OutHeaders {
  const out: OutHeaders = {};
  for (const k in headers) {
    const name = k.toLowerCase();
    if (!forbiddenH2.has(name)) out[name] = headers[k] as string | string[];
  }
  return out;
}

function sendPendingTrailers(this: WithExchange & ServerHttp2Stream): void {
  const ex = this[kExchange] as H2Exchange<unknown> | undefined;
  const trailers = ex?.response.pendingTrailers;
  // No trailers after all: sendTrailers({}) still ends the stream with END_STREAM (an empty DATA frame). close()
  // here would mark the stream closed before its last frame is written, and node then never sends END_STREAM.
  // A throw here would escape from inside node:http2's callback and take the process down.
  if (this.destroyed || this.closed) return;
  try { this.sendTrailers(trailers && Object.keys(trailers).length > 0 ? h2Headers(trailers) : {}); } catch { this.close(h2c.NGHTTP2_INTERNAL_ERROR); }
}

class H2Response implements DownstreamResponse {
  private responded = false;
  pendingTrailers: OutHeaders | null = null;
  readonly body: Writable;
  constructor(private readonly stream: ServerHttp2Stream) { this.body = stream; }
  get started(): boolean { return this.responded || this.stream.headersSent; }
  start(status: number, out: OutHeaders, options: { endStream: boolean; trailers: boolean }): void {
    this.responded = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const waitForTrailers = options.trailers && !options.endStream;
    if (waitForTrailers) stream.once('wantTrailers', sendPendingTrailers);
    const headers: Record<string, string | string[] | number> = h2Headers(out);
    headers[':status'] = status;
    stream.respond(headers, { endStream: options.endStream, waitForTrailers });
  }
  endWithTrailers(trailers: OutHeaders): void {
    this.pendingTrailers = trailers;
    this.stream.end();
  }
  end(): void { this.stream.end(); }
  abort(): void { if (!this.stream.destroyed) this.stream.close(h2c.NGHTTP2_INTERNAL_ERROR); }
}

class H2Exchange<Conn> extends AbortableExchange implements Exchange<Conn> {
  readonly httpVersion = '2' as const;
  readonly method: string;
  readonly target: string;
  readonly body: Readable;
  readonly contentLength: number | undefined;
  readonly response: H2Response;

  constructor(readonly conn: Conn, private readonly stream: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>, readonly rawHeaders: readonly string[], readonly bodyless: boolean) {
    super();
    this.method = String(headers[':method'] ?? '');
    this.target = String(headers[':path'] ?? '');
    this.body = stream;
    const lengthHeader = headers['content-length'];
    this.contentLength = typeof lengthHeader === 'string' ? Number(lengthHeader) : undefined;
    this.response = new H2Response(stream);
    (stream as WithExchange)[kExchange] = this;
    stream.on('aborted', onTransportAbort);
    stream.on('error', ignoreError);
    stream.once('close', forgetExchange);
  }

  onTransportAbort(): void { this.fireAbort(); }
  continueIfExpected(): void { /* h2 clients do not wait for 100 in practice; the body flows after the permit */ }
  /**
   * A request body that will not be read (refused or stalled) ends with the response: once the response is
   * flushed, RST_STREAM(NO_ERROR) tells the caller to stop sending (RFC 9113 section 8.1). Drain sends GOAWAY instead.
   */
  closeAfterResponse(): void {
    const stream = this.stream;
    const cut = (): void => { if (!stream.destroyed && !stream.readableEnded) stream.close(h2c.NGHTTP2_NO_ERROR); };
    if (stream.writableFinished) cut(); else stream.once('finish', cut);
  }
}

export function h2Exchange<Conn = ConnectionInfo>(conn: Conn, stream: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>, rawHeaders: string[], endStream: boolean): Exchange<Conn> {
  return new H2Exchange(conn, stream, headers, rawHeaders, endStream);
}
