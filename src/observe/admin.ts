// Owns the admin listener: GET /metrics (Prometheus text), /ready, /live, /policy (JSON); 404 otherwise.
// Plain HTTP on its own address (default loopback); never shares a port or a code path with proxied traffic.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

/** An address to listen on, or the one bound. */
export interface AdminAddress {
  host: string;
  port: number;
}

/** What GET /policy shows about the policy in force: the store's status, passed through as JSON. */
export interface PolicyStatus {
  revision: string;
  loadedAt: string;
  documents: unknown;
  diagnostics: unknown;
  lastReload: unknown;
  /** The peer registry's status, when one is configured. */
  peers?: unknown;
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

type StatusSource = { status(): PolicyStatus };

export interface AdminServerOptions {
  listen: AdminAddress;
  metrics: Pick<Metrics, 'scrape' | 'contentType'>;
  /** The store, or a getter for one that may not exist yet (then /ready is 503 and /policy says so). */
  policyStore: StatusSource | (() => StatusSource | undefined) | undefined;
  /** Listener state from the data plane; the admin server adds the policy condition itself. */
  readiness: () => Readiness;
  version: string;
  /** Read-only status listener: /ready, /live and /metrics only (/policy is 404), for the pod IP. */
  statusOnly?: boolean;
}

export interface AdminServer {
  address: AdminAddress;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

const json = (res: ServerResponse, status: number, value: unknown, head: boolean) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value, null, 2) + '\n', head);

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const store = (): StatusSource | undefined => (typeof options.policyStore === 'function' ? options.policyStore() : options.policyStore);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === '/metrics' || path === '/ready' || path === '/live' || (path === '/policy' && !options.statusOnly);
    if (!known) { send(res, 404, 'text/plain; charset=utf-8', 'not found\n', req.method === 'HEAD'); return; }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    const head = req.method === 'HEAD';
    switch (path) {
      case '/live':
        send(res, 200, 'text/plain; charset=utf-8', 'live\n', head);
        return;
      case '/ready': {
        const r = options.readiness();
        const reasons = [...r.reasons];
        if (!store()) reasons.push('no policy snapshot loaded');
        const ready = r.ready && reasons.length === 0;
        json(res, ready ? 200 : 503, { ready, reasons }, head);
        return;
      }
      case '/metrics': {
        const text = await options.metrics.scrape();
        send(res, 200, options.metrics.contentType, text, head);
        return;
      }
      case '/policy': {
        const s = store();
        if (!s) { json(res, 503, { version: options.version, loaded: false }, head); return; }
        const st = s.status();
        json(res, 200, {
          version: options.version,
          loaded: true,
          revision: st.revision,
          loadedAt: st.loadedAt,
          documents: st.documents,
          diagnostics: st.diagnostics,
          lastReload: st.lastReload,
          ...(st.peers !== undefined ? { peers: st.peers } : {}),
        }, head);
        return;
      }
    }
  };

  const server = createServer({ headersTimeout: 5000, requestTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    // The body (if any) is ignored; drain it so keep-alive connections stay usable.
    req.resume();
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n', false);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.maxConnections = 256;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
