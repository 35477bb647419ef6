// Owns the in-memory exchange and the recording forwarder: the request stages run over them exactly as over
// a socket, so `portcullis check`, `explain` and tests decide with the data plane's own code, not a copy.

import { PassThrough } from 'node:stream';
import type { Exchange, OutHeaders } from './exchange.js';
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

/** A bodyless request with nobody on the other end: the response is recorded instead of written. */
export function memoryExchange(request: MemoryRequest): { ex: Exchange; response: RecordedResponse } {
  const response: RecordedResponse = { status: 0, headers: {}, body: '', trailers: undefined };
  // Streams are made when first used: most decisions never touch them, and replay makes a million exchanges.
  let body: PassThrough | undefined;
  const responseBody = (): PassThrough => {
    if (!body) {
      body = new PassThrough();
      body.on('data', (c: Buffer) => { response.body += c.toString('utf8'); });
    }
    return body;
  };
  let started = false;
  let requestBody: PassThrough | undefined;
  const ex: Exchange = {
    conn: request.conn,
    httpVersion: request.httpVersion,
    method: request.method,
    target: request.target,
    rawHeaders: request.rawHeaders,
    get body() {
      if (!requestBody) { requestBody = new PassThrough(); requestBody.end(); }
      return requestBody;
    },
    contentLength: undefined,
    bodyless: true,
    response: {
      get started() { return started; },
      start(status, headers) { started = true; response.status = status; response.headers = headers; },
      get body() { return responseBody(); },
      endWithTrailers(trailers) { response.trailers = trailers; responseBody().end(); },
      end() { responseBody().end(); },
      abort() { responseBody().end(); },
    },
    onAbort() { /* an in-memory client never goes away */ },
    aborted: false,
    continueIfExpected() { /* no body to wait for */ },
    closeAfterResponse() { /* no connection to close */ },
  };
  return { ex, response };
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
