// Owns the in-memory exchange and the recording forwarder: the request stages run over them exactly as over
// a socket, so `portcullis check`, `explain` and tests decide with the data plane's own code, not a copy.

import { PassThrough, Writable } from 'node:stream';
import type { DownstreamResponse, Exchange, OutHeaders } from './exchange.js';
import type { ConnectionInfo } from './types.js';
import type { ForwardOutcome, Forwarder, UpstreamRequest } from './upstream.js';

export interface MemoryRequest {
  conn: ConnectionInfo;
  httpVersion: '1.1' | '2';
  method: string;
  target: string;
  /** Flat [name, value, ...] in the order a client would send them. */
  rawHeaders: string[];
}

/** What the downstream client would have received from a local reply. */
export interface RecordedResponse {
  status: number;
  headers: OutHeaders;
  body: string;
  trailers: OutHeaders | undefined;
}

/**
 * The response body of an in-memory exchange: what is written is recorded at once. Nobody is on the other end
 * to flush to, so `write` and `end` skip the stream machinery (ending a real stream costs several ticks per
 * refused request, and a replay refuses hundreds of thousands); no 'finish' is emitted.
 */
class RecordedBody extends Writable {
  constructor(private readonly response: RecordedResponse) { super(); }
  private record(chunk: unknown, encoding?: unknown): void {
    if (typeof chunk === 'string') this.response.body += Buffer.from(chunk, typeof encoding === 'string' ? encoding as BufferEncoding : 'utf8').toString('utf8');
    else if (chunk instanceof Uint8Array) this.response.body += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.record(chunk);
    done();
  }
  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    this.record(chunk, encoding);
    const callback = typeof encoding === 'function' ? encoding : cb;
    if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)());
    return true;
  }
  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (typeof chunk !== 'function' && chunk !== undefined && chunk !== null) this.record(chunk, encoding);
    const callback = typeof chunk === 'function' ? chunk : typeof encoding === 'function' ? encoding : cb;
    if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)());
    return this;
  }
}

class RecordingResponse implements DownstreamResponse {
  started = false;
  private recordedBody: RecordedBody | undefined;
  constructor(readonly recorded: RecordedResponse) {}
  start(status: number, headers: OutHeaders): void {
    this.started = true;
    this.recorded.status = status;
    this.recorded.headers = headers;
  }
  // Made when first used: most decisions never touch it, and a replay makes a million exchanges.
  get body(): RecordedBody { return this.recordedBody ??= new RecordedBody(this.recorded); }
  endWithTrailers(trailers: OutHeaders): void { this.recorded.trailers = trailers; }
  end(): void { /* recorded as it was written */ }
  abort(): void { /* nothing to tear down */ }
}

/** A class, not a literal with accessors: a replay makes a million of these (see exchange.ts on dictionary mode). */
class MemoryExchange implements Exchange {
  readonly conn: ConnectionInfo;
  readonly httpVersion: '1.1' | '2';
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly contentLength = undefined;
  readonly bodyless = true;
  readonly aborted = false;
  readonly response: RecordingResponse;
  private requestBody: PassThrough | undefined;
  constructor(request: MemoryRequest, recorded: RecordedResponse) {
    this.conn = request.conn;
    this.httpVersion = request.httpVersion;
    this.method = request.method;
    this.target = request.target;
    this.rawHeaders = request.rawHeaders;
    this.response = new RecordingResponse(recorded);
  }
  get body(): PassThrough {
    if (!this.requestBody) { this.requestBody = new PassThrough(); this.requestBody.end(); }
    return this.requestBody;
  }
  onAbort(): void { /* an in-memory client never goes away */ }
  continueIfExpected(): void { /* no body to wait for */ }
  closeAfterResponse(): void { /* no connection to close */ }
}

/** A bodyless request with nobody on the other end: the response is recorded instead of written. */
export function memoryExchange(request: MemoryRequest): { ex: Exchange; response: RecordedResponse } {
  const response: RecordedResponse = { status: 0, headers: {}, body: '', trailers: undefined };
  return { ex: new MemoryExchange(request, response), response };
}

/** A forwarder that keeps what would have reached the workload and answers as the workload would: 200. */
export interface RecordingForwarder extends Forwarder {
  readonly forwarded: UpstreamRequest[];
}

export function recordingForwarder(): RecordingForwarder {
  const forwarded: UpstreamRequest[] = [];
  return {
    forwarded,
    forward(_permit, request): Promise<ForwardOutcome> {
      forwarded.push(request);
      return Promise.resolve({ ok: true, status: 200, outcome: 'ok' });
    },
    close: () => Promise.resolve(),
  };
}
