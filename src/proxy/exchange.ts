// Owns the transport-neutral view of one downstream request/response (HTTP/1.1 or HTTP/2 stream), so
// stages and forwarders never branch on the downstream protocol. Renders respond.ts replies (incl. gRPC trailers-only).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2c, type ServerHttp2Stream } from 'node:http2';
import type { Readable, Writable } from 'node:stream';
import type { ConnectionInfo } from './types.js';
import { encodeGrpcMessage, type Reply } from './respond.js';

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

export interface Exchange {
  readonly conn: ConnectionInfo;
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
  readonly response: DownstreamResponse;
  /** Called once if the client goes away (h1 socket close, h2 RST_STREAM) before the response ended. */
  onAbort(listener: () => void): void;
  readonly aborted: boolean;
  /** Sends `100 Continue` if the client asked for it; only after a permit (PC-15). */
  continueIfExpected(): void;
  /** Ask the client to close the connection after this response (drain). */
  closeAfterResponse(): void;
}

/** Renders a synthetic reply: gRPC callers get HTTP 200 trailers-only with grpc-status / grpc-message. */
export function sendReply(ex: Exchange, reply: Reply, grpc: boolean): number {
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

// === HTTP/1.1 ===

export function h1Exchange(conn: ConnectionInfo, req: IncomingMessage, res: ServerResponse): Exchange {
  let aborted = false;
  let finished = false;
  const abortListeners: (() => void)[] = [];
  const fireAbort = (): void => {
    if (aborted || finished) return;
    aborted = true;
    for (const l of abortListeners) l();
  };
  res.on('finish', () => { finished = true; });
  res.on('close', () => { if (!res.writableFinished) fireAbort(); });
  req.on('aborted', fireAbort);
  const lengthHeader = req.headers['content-length'];
  const contentLength = lengthHeader !== undefined ? Number(lengthHeader) : undefined;
  const chunked = req.headers['transfer-encoding'] !== undefined;
  let closeAfter = false;
  const response: DownstreamResponse = {
    get started() { return res.headersSent; },
    start(status, headers, options) {
      if (closeAfter) headers = { ...headers, connection: 'close' };
      res.writeHead(status, headers);
      if (options.endStream) res.end();
    },
    body: res,
    endWithTrailers(trailers) {
      res.addTrailers(trailers as Record<string, string>);
      res.end();
    },
    end() { res.end(); },
    abort() { res.destroy(); },
  };
  return {
    conn,
    httpVersion: '1.1',
    method: req.method ?? '',
    target: req.url ?? '',
    rawHeaders: req.rawHeaders,
    body: req,
    contentLength,
    bodyless: !chunked && (contentLength === undefined || contentLength === 0),
    response,
    onAbort(l) { abortListeners.push(l); },
    get aborted() { return aborted; },
    continueIfExpected() {
      const expect = req.headers.expect;
      if (expect !== undefined && /100-continue/i.test(expect) && !res.headersSent) res.writeContinue();
    },
    closeAfterResponse() { closeAfter = true; res.shouldKeepAlive = false; },
  };
}

// === HTTP/2 ===

const forbiddenH2 = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

function h2Headers(headers: OutHeaders): OutHeaders {
  const out: OutHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (!forbiddenH2.has(name)) out[name] = v;
  }
  return out;
}

export function h2Exchange(conn: ConnectionInfo, stream: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>, rawHeaders: string[], endStream: boolean): Exchange {
  let aborted = false;
  let started = false;
  let pendingTrailers: OutHeaders | null = null;
  const abortListeners: (() => void)[] = [];
  stream.on('aborted', () => {
    if (aborted) return;
    aborted = true;
    for (const l of abortListeners) l();
  });
  stream.on('error', () => { /* surfaced as 'aborted'/'close'; never crash the process */ });
  const lengthHeader = headers['content-length'];
  const contentLength = typeof lengthHeader === 'string' ? Number(lengthHeader) : undefined;
  const response: DownstreamResponse = {
    get started() { return started || stream.headersSent; },
    start(status, out, options) {
      started = true;
      if (stream.destroyed || stream.closed) return;
      if (options.trailers && !options.endStream) {
        stream.once('wantTrailers', () => {
          if (pendingTrailers && Object.keys(pendingTrailers).length > 0) stream.sendTrailers(h2Headers(pendingTrailers));
          else stream.close(h2c.NGHTTP2_NO_ERROR);
        });
      }
      stream.respond({ ...h2Headers(out), ':status': status }, { endStream: options.endStream, waitForTrailers: options.trailers && !options.endStream });
    },
    body: stream,
    endWithTrailers(trailers) {
      pendingTrailers = trailers;
      stream.end();
    },
    end() { stream.end(); },
    abort() { if (!stream.destroyed) stream.close(h2c.NGHTTP2_INTERNAL_ERROR); },
  };
  return {
    conn,
    httpVersion: '2',
    method: String(headers[':method'] ?? ''),
    target: String(headers[':path'] ?? ''),
    rawHeaders,
    body: stream,
    contentLength,
    bodyless: endStream,
    response,
    onAbort(l) { abortListeners.push(l); },
    get aborted() { return aborted; },
    continueIfExpected() { /* h2 clients do not wait for 100 in practice; the body flows after the permit */ },
    closeAfterResponse() { /* drain sends GOAWAY on the session instead */ },
  };
}
