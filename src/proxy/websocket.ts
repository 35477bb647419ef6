// Owns WebSocket upgrades over HTTP/1.1: decided like any request, then tunnelled only on an upstream
// `101 Switching Protocols` (never on a 200: Envoy CVE-2024-23326). h2c upgrades are refused (PC-13).

import * as http from 'node:http';
import type * as net from 'node:net';
import { Writable, type Readable } from 'node:stream';
import type { InboundListenerConfig } from '../config/types.js';
import type { Permit } from '../policy/decision.js';
import { AbortableExchange, attachExchange, ignoreError, onTransportAbort, type DownstreamResponse, type Exchange, type OutHeaders } from './exchange.js';
import { cleanResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './respond.js';
import { handleRequest } from './stages.js';
import type { ConnectionInfo, ProxyDeps } from './types.js';
import type { ForwardOutcome, Forwarder, UpstreamRequest } from './upstream.js';
import { Code } from '../codes.js';

function headLines(status: number, headers: OutHeaders): string {
  let out = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(v)) continue;
      out += `${name}: ${v}\r\n`;
    }
  }
  return out + '\r\n';
}

class UpgradeResponse implements DownstreamResponse {
  started = false;
  readonly body: Writable;
  constructor(private readonly socket: net.Socket) {
    this.body = new Writable({
      write(chunk: Buffer, _enc, cb) { socket.write(chunk, cb); },
      final(cb) { socket.end(); cb(); },
    });
  }
  start(status: number, headers: OutHeaders, options: { endStream: boolean; trailers: boolean }): void {
    this.started = true;
    this.socket.write(headLines(status, { ...headers, connection: 'close' }));
    if (options.endStream) this.socket.end();
  }
  endWithTrailers(): void { this.socket.end(); }
  end(): void { this.socket.end(); }
  abort(): void { this.socket.destroy(); }
}

/** An exchange whose response is written straight onto the upgraded socket (Node hands it over raw). */
class UpgradeExchange extends AbortableExchange implements Exchange {
  readonly httpVersion = '1.1' as const;
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly body: Readable;
  readonly contentLength = undefined;
  readonly bodyless = true;
  readonly isUpgrade = true;
  readonly response: UpgradeResponse;

  constructor(readonly conn: ConnectionInfo, req: http.IncomingMessage, socket: net.Socket) {
    super();
    this.method = req.method ?? '';
    this.target = req.url ?? '';
    this.rawHeaders = req.rawHeaders;
    this.body = req;
    this.response = new UpgradeResponse(socket);
    attachExchange(socket, this);
    socket.on('close', onTransportAbort);
    socket.on('error', ignoreError);
  }

  onTransportAbort(): void { this.fireAbort(); }
  continueIfExpected(): void {}
  closeAfterResponse(): void {}
}

function websocketForwarder(listener: InboundListenerConfig, socket: net.Socket, head: Buffer): Forwarder {
  const url = new URL(listener.upstream);
  return {
    async close() {},
    forward(permit: Permit, request: UpstreamRequest, ex: Exchange): Promise<ForwardOutcome> {
      void permit;
      if (url.protocol !== 'http:') return Promise.resolve({ ok: false, refusal: { kind: 'upstream_error' } });
      return new Promise<ForwardOutcome>((resolve) => {
        let settled = false;
        const finish = (o: ForwardOutcome): void => { if (!settled) { settled = true; resolve(o); } };
        const upstreamReq = http.request({
          host: url.hostname,
          port: Number(url.port || 80),
          method: request.method,
          path: request.path,
          headers: { ...request.headers, host: request.authority, connection: 'Upgrade', upgrade: 'websocket' },
          agent: false,
          timeout: request.headersTimeoutMs,
        });
        upstreamReq.on('timeout', () => { upstreamReq.destroy(Object.assign(new Error('timeout'), { code: Code.UPSTREAM_TIMEOUT })); });
        upstreamReq.on('error', (err) => finish({ ok: false, refusal: classifyUpstreamError(err) }));
        upstreamReq.on('upgrade', (res, upstreamSocket, upstreamHead) => {
          // Tunnel mode only now, on a real 101 from the workload.
          const headers = cleanResponseHeaders(res.headers as Record<string, string | string[] | undefined>);
          socket.write(headLines(101, { ...headers, connection: 'Upgrade', upgrade: 'websocket' }));
          if (upstreamHead.length > 0) socket.write(upstreamHead);
          if (head.length > 0) upstreamSocket.write(head);
          upstreamSocket.pipe(socket);
          socket.pipe(upstreamSocket);
          const closeBoth = (): void => { upstreamSocket.destroy(); socket.destroy(); };
          upstreamSocket.on('error', closeBoth);
          socket.on('error', closeBoth);
          upstreamSocket.on('close', () => socket.end());
          socket.on('close', () => { upstreamSocket.destroy(); finish({ ok: true, status: 101, outcome: 'ok' }); });
        });
        upstreamReq.on('response', (res) => {
          // The workload declined the upgrade: relay its answer as a plain response and close.
          const headers = cleanResponseHeaders(res.headers as Record<string, string | string[] | undefined>);
          ex.response.start(res.statusCode ?? 502, headers, { endStream: false, trailers: false });
          res.pipe(ex.response.body);
          res.on('end', () => finish({ ok: true, status: res.statusCode ?? 502, outcome: 'ok' }));
          res.on('error', () => { ex.response.abort(); finish({ ok: true, status: res.statusCode ?? 502, outcome: 'reset_after_headers' }); });
        });
        upstreamReq.end();
      });
    },
  };
}

export async function handleUpgrade(info: ConnectionInfo, req: http.IncomingMessage, socket: net.Socket, head: Buffer, deps: ProxyDeps, listener: InboundListenerConfig): Promise<void> {
  const ex = new UpgradeExchange(info, req, socket);
  await handleRequest(ex, deps, websocketForwarder(listener, socket, head));
}
