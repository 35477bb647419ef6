// Owns the caller's side of the mesh: a plaintext loopback listener (HTTP/1.1, h2c, gRPC) for the local app, whose
// requests go through the shared exchange and forwarders to one destination sidecar over verified mTLS (security.md PC-24/PC-25).

import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants as h2constants, createServer as createH2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { OutboundListenerConfig } from '../config/types.js';
import type { DecisionSink } from '../observe/types.js';
import type { RevocationList } from '../identity/crl.js';
import type { Credentials } from '../identity/credentials.js';
import type { ProxyMetrics } from './types.js';
import { createProtocolSniffer } from './protocol-sniff.js';
import { connectionChecks, connectionsCheckingIntervalMs } from './h1-connection-checks.js';
import { h1Exchange, h2Exchange } from './exchange.js';
import { destinationForwarder, parseTarget } from './outbound-destination.js';
import { handleOutbound, type OutboundRoute } from './outbound-request.js';
import { InFlightList } from './in-flight-list.js';

/** pino-compatible subset, so app.ts can pass its logger and tests a silent one. */
export interface OutboundLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface OutboundDeps {
  /** Our own SVID + trust bundle, current generation (a CredentialStore). */
  credentials: { current(): Credentials };
  /** Trust domains a destination's SVID may belong to (Config.tls.trustDomains). */
  trustDomains: readonly string[];
  decisionSink: DecisionSink;
  metrics?: ProxyMetrics;
  logger?: OutboundLogger;
  /** The CRLs in force (the same store as inbound), checked for the destination's leaf and intermediates. */
  revocation?: () => RevocationList;
  /**
   * Defaults: connect 5 s, destination response headers 300 s, idle 60 s, and 60 s for the app to send a
   * request head (`requestHeadersMs`).
   */
  timeouts?: { connectMs?: number; headersMs?: number; idleMs?: number; requestHeadersMs?: number };
  now?: () => number;
}

export interface OutboundListener {
  /** Where the app connects (the bound port when `listen.port` was 0). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startOutboundListener(config: OutboundListenerConfig, deps: OutboundDeps): Promise<OutboundListener> {
  const target = parseTarget(config.target);
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const idleMs = deps.timeouts?.idleMs ?? 60_000;
  const requestHeadersMs = deps.timeouts?.requestHeadersMs ?? 60_000;
  const route: OutboundRoute = {
    listener: config.name,
    port: config.listen.port,
    target,
    expectIdentity: config.expectIdentity,
    headersTimeoutMs: deps.timeouts?.headersMs ?? 300_000,
    sink: deps.decisionSink,
    metrics: deps.metrics,
    now,
  };
  const forwarder = destinationForwarder(config, target, {
    credentials: deps.credentials,
    trustDomains: deps.trustDomains,
    now,
    ...(deps.revocation ? { revocation: deps.revocation } : {}),
    ...(log ? { log } : {}),
  }, { connectMs: deps.timeouts?.connectMs ?? 5_000, idleMs });

  // The exchanges carry no connection facts: the app is local, and what the event names is the destination.
  // === HTTP/1.1 ===
  const h1 = createHttpServer({ requestTimeout: 0, headersTimeout: requestHeadersMs, keepAliveTimeout: 5_000, connectionsCheckingInterval: connectionsCheckingIntervalMs({ headersTimeoutMs: requestHeadersMs, requestTimeoutMs: requestHeadersMs }) });
  // This server never listens itself (the sniffer hands it sockets): without this, its headersTimeout never ran.
  const h1Checks = connectionChecks(h1);
  const onH1Request = (req: IncomingMessage, res: ServerResponse): void => { void handleOutbound(h1Exchange(null, req, res), route, forwarder); };
  h1.on('request', onH1Request);
  // `Expect: 100-continue` is answered when the request is forwarded, as inbound does.
  h1.on('checkContinue', onH1Request);

  // === HTTP/2 cleartext + gRPC ===
  const h2 = createH2Server({ settings: { maxConcurrentStreams: 1000 } });
  const downstreamSessions = new InFlightList<Http2Session>();
  h2.on('session', (s: Http2Session) => {
    const link = downstreamSessions.add(s);
    s.on('close', () => downstreamSessions.remove(link));
  });
  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    const endStream = (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    void handleOutbound(h2Exchange(null, stream, headers as Record<string, string | string[] | undefined>, rawHeaders, endStream), route, forwarder);
  });

  // === one port, two protocols ===
  // The app may speak HTTP/1.1 or HTTP/2 with prior knowledge (gRPC); the first 24 bytes tell which.
  const front: NetServer = createProtocolSniffer({
    h1: (socket) => { h1Checks.adopt(socket); h1.emit('connection', socket); },
    h2: (socket) => h2.emit('connection', socket),
    silentTimeoutMs: 60_000,
  });

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(config.listen.port, config.listen.host, () => { front.off('error', reject); resolve(); });
  });
  const bound = front.address() as AddressInfo;
  route.port = bound.port;
  if (!/^(127\.|::1$|localhost$)/.test(config.listen.host)) {
    log?.warn({ listener: config.name, listen: config.listen.host }, 'outbound listener is not on loopback: anyone who can reach it can call the destination with this workload\'s identity');
  }
  log?.info({ listener: config.name, listen: `${bound.address}:${bound.port}`, target: config.target, expectIdentity: config.expectIdentity }, 'outbound listener started');

  return {
    address: { host: bound.address, port: bound.port },
    async close(): Promise<void> {
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        h1.closeAllConnections();
        for (const s of downstreamSessions.values()) s.destroy();
      });
      // Stops the connection checker; the "not running" error is expected (it never listened).
      h1.close(() => {});
      await forwarder.close();
    },
  };
}
