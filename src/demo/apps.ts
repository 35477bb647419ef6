// Owns the demo workloads: service b (an HTTP JSON API and a gRPC Orders service) and a small caller
// app for containers (turns curl calls into calls through the local Portcullis outbound listeners).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';

/** gRPC with a JSON codec: real gRPC framing, status and trailers, no .proto file to ship. */
const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
};
function unary(path: string): grpc.MethodDefinition<unknown, unknown> {
  return { path, requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize };
}
export const ordersService: grpc.ServiceDefinition = {
  GetOrder: unary('/demo.Orders/GetOrder'),
  DeleteOrder: unary('/demo.Orders/DeleteOrder'),
};
export type OrdersMethod = 'GetOrder' | 'DeleteOrder';

export interface ServiceB {
  httpPort: number;
  grpcPort: number;
  /** Requests that reached the app (what Portcullis let through). */
  seen: { protocol: 'http' | 'grpc'; method: string; path: string; forwardedIdentity: string | undefined }[];
  close(): Promise<void>;
}

function forwardedIdentity(headers: Record<string, unknown>): string | undefined {
  const xfcc = headers['x-forwarded-client-cert'];
  if (typeof xfcc !== 'string') return undefined;
  return /URI=([^;,]+)/.exec(xfcc)?.[1] ?? xfcc;
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Service b: the app never checks who calls; that is Portcullis's job. */
export async function startServiceB(opts: { host?: string; httpPort?: number; grpcPort?: number } = {}): Promise<ServiceB> {
  const host = opts.host ?? '127.0.0.1';
  const seen: ServiceB['seen'] = [];
  const orders = [{ id: 7, item: 'portcullis', qty: 1 }];
  const http: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://service-b');
    seen.push({ protocol: 'http', method: req.method ?? '', path: url.pathname, forwardedIdentity: forwardedIdentity(req.headers) });
    void (async () => {
      if (url.pathname === '/healthz') return sendJson(res, 200, { ok: true });
      if (url.pathname === '/api/orders' && req.method === 'GET') return sendJson(res, 200, { orders, caller: forwardedIdentity(req.headers) ?? null });
      if (url.pathname === '/api/orders' && req.method === 'POST') {
        const body = await readBody(req).catch(() => '');
        const order = { id: orders.length + 7, ...(safeJson(body) ?? {}) };
        return sendJson(res, 201, { created: order });
      }
      if (/^\/api\/orders\/\d+$/.test(url.pathname)) return sendJson(res, 200, orders[0]);
      if (url.pathname.startsWith('/admin')) return sendJson(res, 200, { secret: 'service-b admin settings' });
      return sendJson(res, 404, { error: 'not found' });
    })();
  });
  await new Promise<void>((resolve) => http.listen(opts.httpPort ?? 0, host, resolve));

  const grpcServer = new grpc.Server();
  grpcServer.addService(ordersService, {
    GetOrder: (call: grpc.ServerUnaryCall<{ id?: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.push({ protocol: 'grpc', method: 'POST', path: '/demo.Orders/GetOrder', forwardedIdentity: forwardedIdentity(call.metadata.getMap()) });
      cb(null, { id: call.request.id ?? 7, item: 'portcullis', qty: 1 });
    },
    DeleteOrder: (call: grpc.ServerUnaryCall<{ id?: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.push({ protocol: 'grpc', method: 'POST', path: '/demo.Orders/DeleteOrder', forwardedIdentity: forwardedIdentity(call.metadata.getMap()) });
      cb(null, { deleted: call.request.id ?? 7 });
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${host}:${opts.grpcPort ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));

  return {
    httpPort: (http.address() as AddressInfo).port,
    grpcPort,
    seen,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
    },
  };
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface GrpcResult { code: number; details: string; response: unknown }

/** One unary call over h2c (to a Portcullis outbound listener, or straight to an app). */
export function callOrders(address: string, method: OrdersMethod, req: unknown, timeoutMs = 5000): Promise<GrpcResult> {
  const Client = grpc.makeGenericClientConstructor(ordersService, 'Orders');
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: unknown) => void) => void>)[method];
    if (!fn) { client.close(); resolve({ code: grpc.status.UNIMPLEMENTED, details: 'no such method', response: null }); return; }
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, value) => {
      client.close();
      resolve(err ? { code: err.code, details: err.details, response: null } : { code: grpc.status.OK, details: '', response: value });
    });
  });
}

const grpcToHttp: Record<number, number> = { 0: 200, 7: 403, 16: 401, 14: 503, 4: 504, 12: 404 };

export interface CallerOptions {
  host?: string;
  port: number;
  /** Outbound listener for service b's HTTP API, e.g. `http://127.0.0.1:15001`. */
  httpTarget: string;
  /** Outbound listener for service b's gRPC port, `host:port`. */
  grpcTarget?: string;
  /** Outbound listener for the audit-only service b, if any. */
  auditTarget?: string;
}

/**
 * The caller app (service a, or the intruder) for containers, where curl cannot reach the sidecar's
 * loopback: `/call/<path>` and `/call-audit/<path>` relay to service b, `/grpc/<Method>` makes a gRPC call;
 * the status code that came back through the mesh is returned as is.
 */
export async function startCaller(opts: CallerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://caller');
      if (url.pathname === '/healthz') return sendJson(res, 200, { ok: true });
      const grpcMatch = /^\/grpc\/(GetOrder|DeleteOrder)$/.exec(url.pathname);
      if (grpcMatch && opts.grpcTarget) {
        const r = await callOrders(opts.grpcTarget, grpcMatch[1] as OrdersMethod, { id: 7 });
        return sendJson(res, grpcToHttp[r.code] ?? 502, { grpcStatus: r.code, details: r.details, response: r.response });
      }
      const relay = /^\/call(-audit)?(\/.*)$/.exec(url.pathname);
      const base = relay?.[1] ? opts.auditTarget : opts.httpTarget;
      if (!relay || !base) return sendJson(res, 404, { error: 'use /call/<path>, /call-audit/<path> or /grpc/<GetOrder|DeleteOrder>' });
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req);
      const headers: Record<string, string> = {};
      for (const name of ['authorization', 'content-type']) {
        const v = req.headers[name];
        if (typeof v === 'string') headers[name] = v;
      }
      try {
        const upstream = await request(`${base}${relay[2]}${url.search}`, { method: (req.method ?? 'GET') as 'GET', headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
        const text = await upstream.body.text();
        res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'text/plain') });
        res.end(text);
      } catch (err) {
        sendJson(res, 502, { error: `caller could not reach its sidecar: ${err instanceof Error ? err.message : String(err)}` });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host ?? '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
