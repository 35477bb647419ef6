// Owns the caller's side of the mesh: a plaintext loopback listener (HTTP/1.1, h2c, gRPC) that originates
// mTLS to one destination sidecar and forwards only after the server's X509-SVID is the expected SPIFFE ID.
// Follows SPIFFE X509-SVID §5 (verify the URI SAN from DER, never DNS names) and security.md PC-24/PC-25.

import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  constants as h2constants,
  createServer as createH2Server,
  type ClientHttp2Stream,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders as H2IncomingHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import type { OutboundListenerConfig } from '../config/types.js';
import type { DecisionSink } from '../observe/types.js';
import { buildDecisionEvent } from '../observe/decision-event.js';
import { PeerVerifier } from '../identity/peer.js';
import type { RevocationList } from '../identity/crl.js';
import { clientTlsOptions, PeerIdentityError, type Credentials } from '../identity/credentials.js';
import type { ProxyMetrics } from './types.js';
import { createProtocolSniffer } from './protocol-sniff.js';
import { connectionHeaders } from './headers.js';
import { UpstreamH2Sessions } from './outbound-h2-sessions.js';
import { h1Response, h2Response, sendReplyOn } from './exchange.js';
import { classifyUpstreamError, isGrpcContentType, replyFor, type Refusal, type Reply } from './respond.js';

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
  /** Defaults: connect 5 s, response headers 300 s, idle 60 s. */
  timeouts?: { connectMs?: number; headersMs?: number; idleMs?: number };
  now?: () => number;
}

export interface OutboundListener {
  /** Where the app connects (the bound port when `listen.port` was 0). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** The outbound side streams bodies as they are (no re-framing), so only connection headers are dropped. */
const HOP_BY_HOP = connectionHeaders;

/** OpenSSL verify codes (X509_V_ERR_* names as Node reports them) and Node's TLS error codes. */
function isTlsFailure(code: string): boolean {
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code === 'EPROTO'
    || /CERT|SELF_SIGNED|UNABLE_TO|INVALID_PURPOSE|INVALID_CA|PATH_LENGTH|HOSTNAME_MISMATCH|CRL/.test(code);
}

function findIdentityError(err: unknown): PeerIdentityError | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; i++) {
    if (e instanceof PeerIdentityError) return e;
    e = typeof e === 'object' && 'cause' in e ? (e as { cause: unknown }).cause : undefined;
  }
  return undefined;
}

function parseTarget(target: string): { host: string; port: number; authority: string } {
  const url = new URL(target);
  if (url.protocol !== 'https:') throw new Error(`outbound target must be https://host:port, got ${target}`);
  const port = url.port === '' ? 443 : Number(url.port);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, authority: url.port === '' ? url.hostname : `${url.hostname}:${url.port}` };
}

function isLoopbackAuthority(authority: string | undefined, listenPort: number): boolean {
  if (!authority) return true;
  const lower = authority.toLowerCase();
  return [`127.0.0.1:${listenPort}`, `localhost:${listenPort}`, `[::1]:${listenPort}`, '127.0.0.1', 'localhost', '[::1]'].includes(lower);
}

export async function startOutboundListener(config: OutboundListenerConfig, deps: OutboundDeps): Promise<OutboundListener> {
  const target = parseTarget(config.target);
  const serverName = config.serverName ?? target.host;
  const now = deps.now ?? Date.now;
  const connectMs = deps.timeouts?.connectMs ?? 5_000;
  const headersMs = deps.timeouts?.headersMs ?? 300_000;
  const idleMs = deps.timeouts?.idleMs ?? 60_000;
  const log = deps.logger;
  let boundPort = config.listen.port;

  // Fresh TLS options per connection: a rotated SVID or bundle applies to the next handshake, and no
  // session is resumed across a change of validation settings (Envoy CVE-2022-21654).
  // checkServerIdentity (src/identity) replaces hostname checks: X509-SVID rules + exact SPIFFE ID.
  const verifier = new PeerVerifier({ maxEntries: 64 });
  const tlsOptions = (alpn: string[]): ConnectionOptions => ({
    ...clientTlsOptions(deps.credentials.current(), { expectIdentity: config.expectIdentity, trustDomains: deps.trustDomains, verifier, now, ...(deps.revocation ? { revocation: deps.revocation } : {}) }),
    servername: /^[\d.]+$|:/.test(serverName) ? undefined : serverName,
    ALPNProtocols: alpn,
  });

  const pool = new Pool(`https://${target.authority}`, {
    connect: (opts, callback) => {
      buildConnector({ ...tlsOptions(['http/1.1']), timeout: connectMs })(opts, callback);
    },
    headersTimeout: headersMs,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
  });

  function publish(event: {
    started: number; status: number; grpcStatus: number | null; reason: string; verdict: string;
    protocol: string; method: string; authority: string; path: string; outcome: string; upstreamStatus: number | null;
  }): void {
    const latencyUs = Math.max(0, Math.round((now() - event.started) * 1000));
    // Outbound decides no policy: the event records the destination it verified and what happened.
    const e = buildDecisionEvent({
      decision: null,
      override: { verdict: event.verdict, reason: event.reason },
      mode: 'enforce',
      wouldDeny: false,
      policyRevision: '',
      peer: { spiffeId: config.expectIdentity, ip: target.host },
      request: { protocol: event.protocol, method: event.method, authority: event.authority, path: event.path, listener: config.name, port: boundPort },
      jwt: null,
      status: event.status,
      grpcStatus: event.grpcStatus,
      latencyUs,
      upstream: { outcome: event.outcome, status: event.upstreamStatus, durationUs: latencyUs },
      time: now(),
    });
    try { deps.decisionSink.publish(e); } catch { /* the log must never break the data path */ }
    deps.metrics?.upstreamDuration?.(event.outcome, latencyUs / 1e6);
  }

  /**
   * Maps a failure to the outbound reply through respond.ts (identity and TLS failures are 503, never a
   * plaintext retry); the reason is also sent to the app as `x-portcullis-reason`.
   */
  function failureReply(err: unknown): { reply: Reply; outcome: string } {
    const identity = findIdentityError(err);
    const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
    let refusal: Refusal;
    let outcome: string | undefined;
    if (identity) {
      log?.warn({ listener: config.name, target: config.target, reason: identity.reason, expected: config.expectIdentity, detail: identity.message }, 'outbound destination identity rejected');
      refusal = { kind: 'upstream_identity', reason: `server_${identity.reason}` };
      outcome = 'identity_rejected';
    } else if (isTlsFailure(code)) {
      log?.warn({ listener: config.name, target: config.target, code }, 'outbound TLS handshake failed');
      refusal = { kind: 'upstream_identity', reason: 'server_tls_failed' };
      outcome = 'tls_failed';
    } else {
      log?.warn({ listener: config.name, target: config.target, code, err: err instanceof Error ? err.message : String(err) }, 'outbound upstream failure');
      refusal = classifyUpstreamError(err);
    }
    const reply = replyFor(refusal);
    return { reply: { ...reply, headers: { ...reply.headers, 'x-portcullis-reason': reply.reason } }, outcome: outcome ?? reply.reason };
  }

  // ---------------------------------------------------------------- HTTP/1.1 downstream
  const h1 = createHttpServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, (req, res) => {
    void forwardH1(req, res);
  });

  async function forwardH1(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = now();
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const authority = isLoopbackAuthority(req.headers.host, boundPort) ? target.authority : (req.headers.host ?? target.authority);
    const headers = forwardableH1Headers(req.headers);
    headers['host'] = authority;
    const hasBody = !(method === 'GET' || method === 'HEAD') || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    try {
      // The app hanging up cancels the upstream request instead of leaving it running.
      const abort = new AbortController();
      res.on('close', () => { if (!res.writableFinished) abort.abort(); });
      const upstream = await pool.request({ method: method as 'GET', path, headers, body: hasBody ? req : null, upgrade: null, signal: abort.signal });
      const responseHeaders: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstream.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name.toLowerCase())) continue;
        responseHeaders[name] = value;
      }
      res.writeHead(upstream.statusCode, responseHeaders);
      for await (const chunk of upstream.body) {
        if (!res.write(chunk as Buffer)) {
          await new Promise<void>((resolve) => {
            const go = (): void => { res.off('drain', go); res.off('close', go); resolve(); };
            res.once('drain', go);
            res.once('close', go);
          });
        }
        if (res.destroyed) {
          upstream.body.destroy();
          return;
        }
      }
      const trailers = Object.fromEntries(Object.entries(upstream.trailers ?? {}).filter(([, v]) => v !== undefined)) as Record<string, string>;
      if (Object.keys(trailers).length > 0 && req.headers.te?.includes('trailers')) res.addTrailers(trailers);
      res.end();
      publish({ started, status: upstream.statusCode, grpcStatus: null, reason: 'forwarded', verdict: 'allow', protocol: 'http', method, authority, path, outcome: 'ok', upstreamStatus: upstream.statusCode });
    } catch (err) {
      const { reply, outcome } = failureReply(err);
      sendReplyOn(h1Response(res), method, reply, false);
      req.resume();
      publish({ started, status: reply.status, grpcStatus: null, reason: reply.reason, verdict: 'error', protocol: 'http', method, authority, path, outcome, upstreamStatus: null });
    }
  }

  // ---------------------------------------------------------------- HTTP/2 cleartext + gRPC downstream
  const h2 = createH2Server({ settings: { maxConcurrentStreams: 1000 } });
  const downstreamSessions = new Set<Http2Session>();
  h2.on('session', (s: Http2Session) => {
    downstreamSessions.add(s);
    s.on('close', () => downstreamSessions.delete(s));
  });
  // Upstream h2 sessions to the destination sidecar, bounded and spread by stream slots.
  const upstreamSessions = new UpstreamH2Sessions({ target, tlsOptions, idleMs, listener: config.name, ...(log ? { log } : {}) });

  h2.on('stream', (stream: ServerHttp2Stream, headers: H2IncomingHeaders, flags: number) => {
    forwardH2(stream, headers, (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  });

  function forwardH2(down: ServerHttp2Stream, headers: H2IncomingHeaders, requestEnded: boolean): void {
    const started = now();
    const method = String(headers[':method'] ?? 'GET');
    const path = String(headers[':path'] ?? '/');
    const rawAuthority = headers[':authority'] === undefined ? headers['host'] : headers[':authority'];
    const authority = isLoopbackAuthority(rawAuthority as string | undefined, boundPort) ? target.authority : String(rawAuthority);
    const grpc = isGrpcContentType(headers['content-type'] as string | undefined);
    const out: OutgoingHttpHeaders = { ':method': method, ':path': path, ':scheme': 'https', ':authority': authority };
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(':') || value === undefined || HOP_BY_HOP.has(name)) continue;
      out[name] = value;
    }
    if (headers['te'] === 'trailers') out['te'] = 'trailers';
    let finished = false;
    const fail = (err: unknown): void => {
      if (finished) return;
      finished = true;
      const { reply, outcome } = failureReply(err);
      // A stream with its response already started is reset (sendReplyOn); a stream that is gone is left alone.
      if (!down.destroyed) sendReplyOn(h2Response(down), method, reply, grpc);
      publish({ started, status: grpc ? 200 : reply.status, grpcStatus: grpc ? reply.grpcStatus : null, reason: reply.reason, verdict: 'error', protocol: grpc ? 'grpc' : 'http', method, authority, path, outcome, upstreamStatus: null });
    };

    let up: ClientHttp2Stream;
    // The 'stream' event's END_STREAM flag, not readableEnded ('end' has not been emitted yet): a GET
    // goes upstream as one HEADERS frame instead of HEADERS plus an empty DATA frame.
    const bodyless = requestEnded || down.readableEnded;
    const { session: upSession, release } = upstreamSessions.acquire();
    try {
      up = upSession.request(out, { endStream: bodyless, waitForTrailers: false });
    } catch (err) {
      release();
      fail(err);
      return;
    }
    const connectTimer = setTimeout(() => up.close(h2constants.NGHTTP2_CANCEL), headersMs);
    up.on('error', fail);
    up.on('close', () => {
      release();
      clearTimeout(connectTimer);
      if (!finished && !down.headersSent) fail(Object.assign(new Error('upstream stream closed'), { code: 'ECONNRESET' }));
    });
    down.on('close', () => { if (!up.closed) up.close(h2constants.NGHTTP2_CANCEL); });
    down.on('error', () => { if (!up.closed) up.close(h2constants.NGHTTP2_CANCEL); });
    if (bodyless) down.resume();
    else down.pipe(up);

    let trailers: OutgoingHttpHeaders | undefined;
    up.on('trailers', (t) => { trailers = filterTrailers(t); });
    up.on('response', (responseHeaders, flags) => {
      clearTimeout(connectTimer);
      if (down.destroyed) return;
      const status = Number(responseHeaders[':status'] ?? 502);
      const respHeaders: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(responseHeaders)) {
        if (value === undefined || (name.startsWith(':') && name !== ':status') || HOP_BY_HOP.has(name)) continue;
        respHeaders[name] = value;
      }
      const endStream = (flags & h2constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      const done = (): void => {
        finished = true;
        const grpcStatus = grpc ? Number((trailers?.['grpc-status'] ?? responseHeaders['grpc-status'] ?? 2) as string) : null;
        publish({ started, status, grpcStatus, reason: 'forwarded', verdict: 'allow', protocol: grpc ? 'grpc' : 'http', method, authority, path, outcome: 'ok', upstreamStatus: status });
      };
      if (endStream) {
        // gRPC trailers-only responses arrive as a single HEADERS frame with END_STREAM.
        down.respond(respHeaders, { endStream: true });
        done();
        return;
      }
      down.respond(respHeaders, { waitForTrailers: true });
      // Always end through sendTrailers: with no trailers node:http2 sends an empty DATA frame with
      // END_STREAM. close() here marks the stream closed before its last frame is written, and node
      // then destroys it once both sides are done without ever sending END_STREAM or RST_STREAM:
      // the app's stream hangs (every plain h2 response through the mesh did, until its own timeout).
      // A throw here would escape from inside node:http2's callback and take the process down.
      let trailersSent = false;
      down.on('wantTrailers', () => {
        if (trailersSent || down.destroyed || down.closed) return;
        trailersSent = true;
        try { down.sendTrailers(trailers ?? {}); } catch { down.close(h2constants.NGHTTP2_INTERNAL_ERROR); }
      });
      up.pipe(down);
      up.on('end', done);
    });
  }

  // ---------------------------------------------------------------- one port, two protocols
  // The app may speak HTTP/1.1 or HTTP/2 with prior knowledge (gRPC); the first 24 bytes tell which.
  const front: NetServer = createProtocolSniffer({
    h1: (socket) => h1.emit('connection', socket),
    h2: (socket) => h2.emit('connection', socket),
    silentTimeoutMs: 60_000,
  });

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(config.listen.port, config.listen.host, () => { front.off('error', reject); resolve(); });
  });
  const bound = front.address() as AddressInfo;
  boundPort = bound.port;
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
        for (const s of downstreamSessions) s.destroy();
      });
      upstreamSessions.closeAll();
      await pool.close().catch(() => undefined);
    },
  };
}

function forwardableH1Headers(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const connectionTokens = new Set(String(headers['connection'] ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function filterTrailers(trailers: H2IncomingHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(trailers)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export type { Http2Server };
