// Composition root of `portcullis run`: builds every module from one Config (credentials, policy store,
// JWT, decision log, metrics, admin, inbound/outbound listeners) and owns start()/stop(). No request logic here.

import { createRequire } from 'node:module';
import type { Config } from './config/types.js';
import { createPolicyStore, type PolicyStore } from './config/policy-store.js';
import { filePeerSource } from './config/peer-source.js';
import { isPeerDiagnostic } from './config/peers-file.js';
import { CredentialStore } from './identity/credentials.js';
import { verifyPeerCertificate } from './identity/peer.js';
import { CrlStore } from './identity/crl-store.js';
import { createJwtAuthenticator, jwksCacheFor } from './jwt/authenticator.js';
import { createJwksFetcher, type JwksFetcher } from './jwt/fetch-jwks.js';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import type { JwtAuthenticator, JwtAuthenticatorOptions } from './jwt/types.js';
import { createDecisionLog, fanOut, type DecisionLog } from './observe/decision-log.js';
import { reasonOf, verdictOf, type DecisionRecord } from './observe/decision-event.js';
import { createMetrics, type Metrics } from './observe/metrics.js';
import { startAdminServer, type AdminServer } from './observe/admin.js';
import type { DecisionEventV1, DecisionSink } from './observe/types.js';
import type { PolicySnapshot } from './policy/snapshot.js';
import { LocalRateLimiter } from './policy/linkerd-rate-limit.js';
import { startInbound, type InboundServer } from './proxy/inbound.js';
import { startOutboundListener, type OutboundListener } from './proxy/outbound.js';
import { startTcpListener } from './proxy/tcp.js';
import type { ProxyDeps } from './proxy/types.js';
import { opLoggerAtLevel, stderrOpLogger } from './observe/op-log.js';
import { formatDiagnostic } from './policy/diagnostics.js';

export interface AppLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface App {
  readonly config: Config;
  readonly listeners: readonly InboundServer[];
  readonly admin: AdminServer | undefined;
  readonly metrics: Metrics;
  readonly policyStore: PolicyStore | undefined;
  /** Starts everything; rejects with a readable message (and starts nothing) when a part is unusable. */
  start(): Promise<void>;
  /** Drains in-flight requests (up to limits.drainTimeoutMs), then closes everything. */
  stop(): Promise<void>;
  /** SIGTERM's first step: /ready fails (endpoints stop sending) while listeners still accept. */
  beginDrain(): void;
}

/** Raised by start() for unusable configuration (bad policies, unreadable certificates, busy ports): exit 2, not a crash. */
export class StartupError extends Error {
  readonly exitCode = 2;
  constructor(message: string) { super(message); }
}

/**
 * One line naming the config key, its file and the cause, for credentials that cannot be loaded:
 * `cert /etc/portcullis/svid.pem (from portcullis.yaml): no such file or directory`.
 */
function credentialsError(config: Config, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const files: [string, string][] = [['cert', config.tls.certFile], ['key', config.tls.keyFile], ['trustBundle', config.tls.trustBundleFile]];
  const byPath = e && typeof e.path === 'string' ? files.find(([, f]) => f === e.path) : undefined;
  const from = config.configFile ? ` (from ${config.configFile})` : '';
  if (byPath) {
    const cause = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    return `cannot load certificates: ${byPath[0]} ${byPath[1]}${from}: ${cause}`;
  }
  return `cannot load certificates (cert ${config.tls.certFile}, key ${config.tls.keyFile}, trustBundle ${config.tls.trustBundleFile}${from}): ${err instanceof Error ? err.message : String(err)}`;
}

export const stderrLogger: AppLogger = stderrOpLogger;

/** A JWKS fetcher trusting the system roots plus `jwksCa`; an unusable file is a startup error naming the key. */
async function jwksFetcherWithCa(config: Config, previous: JwksFetcher): Promise<JwksFetcher> {
  const file = config.jwksCaFile as string;
  const from = config.configFile ? ` (from ${config.configFile})` : '';
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StartupError(`cannot load jwksCa ${file}${from}: ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`);
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no PEM certificate in it');
    for (const b of blocks) new X509Certificate(b);
  } catch (err) {
    throw new StartupError(`cannot load jwksCa ${file}${from}: ${err instanceof Error ? err.message : String(err)}`);
  }
  await previous.close();
  return createJwksFetcher({ allowHttps: true, ca: [...rootCertificates, ...blocks].join('\n') });
}

export function packageVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    for (const p of ['../package.json', '../../package.json']) {
      try { return (require(p) as { version: string }).version; } catch { /* try the next layout */ }
    }
  } catch { /* fall through */ }
  return '0.0.0';
}

/** Data-plane outcome names -> the metric's bounded `outcome` label. */
const upstreamOutcomeLabels: Record<string, string> = {
  ok: 'success',
  upstream_refused: 'refused',
  upstream_timeout: 'timeout',
  upstream_reset: 'reset',
  reset_after_headers: 'reset',
  upstream_error: 'bad_response',
  client_aborted: 'error',
  body_timeout: 'error',
};

/**
 * The `policy` label of a compiled policy's reference, made once per reference: the engine hands out the same
 * reference object for every decision of a policy, so no label string is built (and hashed) per request.
 */
const policyLabels = new WeakMap<object, string>();
function policyLabel(ref: { namespace: string; name: string }): string {
  let label = policyLabels.get(ref);
  if (label === undefined) {
    label = `${ref.namespace}/${ref.name}`;
    policyLabels.set(ref, label);
  }
  return label;
}

/** Metrics subscribe to the same decision events the log receives. */
function metricsSink(metrics: Metrics): DecisionSink {
  return {
    publish(event: DecisionEventV1) {
      metrics.recordDecision({
        listener: event.request.listener,
        verdict: event.verdict,
        mode: event.mode,
        reason: event.reason,
        wouldDeny: event.would_deny,
        decisionSeconds: event.latency_us / 1e6,
        dialect: event.dialect,
        policy: event.policy ? `${event.policy.namespace}/${event.policy.name}` : null,
        rule: event.rule,
        authorization: event.authorization,
        // End to end without another clock read: deciding, then the workload until the response ended.
        ...(event.request.protocol === 'tcp' ? {} : { request: { protocol: event.request.protocol, status: event.status, grpcStatus: event.grpc_status, durationMs: (event.latency_us + (event.upstream?.duration_us ?? 0)) / 1000 } }),
      });
    },
    // The same sample read from the record the event is built from (the data plane builds no event object).
    publishRecord(r: DecisionRecord) {
      const d = r.decision;
      metrics.recordDecision({
        listener: r.request.listener,
        verdict: verdictOf(r),
        mode: r.mode,
        reason: reasonOf(r),
        wouldDeny: r.wouldDeny,
        decisionSeconds: r.latencyUs / 1e6,
        dialect: d?.dialect ?? null,
        policy: d?.policy ? policyLabel(d.policy) : null,
        rule: d?.rule ?? null,
        authorization: d?.authorization ?? null,
        // No spread of a conditional literal: one sample object (and its request part) per request, nothing more.
        request: r.request.protocol === 'tcp' ? undefined : { protocol: r.request.protocol, status: r.status, grpcStatus: r.grpcStatus, durationMs: (r.latencyUs + (r.upstream?.durationUs ?? 0)) / 1000 },
      });
    },
  };
}

/** How a `concurrency` worker differs from a single process (src/cluster/worker.ts). */
export interface AppOptions {
  /** False in a worker: the primary serves the admin listener for all workers. Default true. */
  serveAdmin?: boolean;
  /** Replaces the decision log destination (a worker hands its lines to the primary). */
  decisionLog?: (metrics: Metrics) => DecisionLog;
}

export function createApp(config: Config, logger: AppLogger = opLoggerAtLevel(config.logLevel), options: AppOptions = {}): App {
  const metrics = createMetrics();
  let credentials: CredentialStore | undefined;
  let crlStore: CrlStore | undefined;
  let policyStore: PolicyStore | undefined;
  let decisionLog: DecisionLog | undefined;
  let admin: AdminServer | undefined;
  let status: AdminServer | undefined;
  let draining = false;
  const listeners: InboundServer[] = [];
  const outbound: OutboundListener[] = [];
  let jwksFetcher = createJwksFetcher({ allowHttps: true });
  /**
   * The JWT authenticator of each snapshot still in use, newest first. It is built when its snapshot is
   * installed and closed 30 s after the snapshot is replaced, when no request can still be using it. All of
   * them share one JWKS cache: a reload keeps the keys of every URI still in use (no refetch, no cold start,
   * no jwks_unavailable when the issuer is briefly down); a URI no snapshot names any more stops refreshing.
   */
  const installedJwt: { snapshot: PolicySnapshot; jwt: JwtAuthenticator }[] = [];
  const rateLimiter = new LocalRateLimiter();
  let started = false;
  const jwtOptions: JwtAuthenticatorOptions = {
    now: Date.now,
    // Through the variable: a jwksCa file replaces the fetcher at start.
    fetchJwks: (uri, timeoutMs) => jwksFetcher(uri, timeoutMs),
    clockSkewSeconds: config.jwks.clockSkewSeconds,
    requireExpiration: false, // per provider, from the snapshot (compatibility + jwks.requireExpiration)
    maxTokenBytes: config.limits.maxJwtBytes,
    cacheTtlMs: config.jwks.cacheTtlMs,
    refreshIntervalMs: config.jwks.refreshIntervalMs,
    staleGraceMs: config.jwks.staleGraceMs,
    unknownKidMinIntervalMs: config.jwks.unknownKidMinIntervalMs,
    onJwksFetchError: (uri, error) => logger.warn({ event: 'jwks_fetch_failed', uri, error: error instanceof Error ? error.message : String(error) }, 'JWKS fetch failed'),
  };
  const jwksCache = jwksCacheFor(jwtOptions);

  function installJwt(snapshot: PolicySnapshot): JwtAuthenticator {
    const jwt = createJwtAuthenticator(snapshot.jwtProviders, { ...jwtOptions, jwksCache });
    installedJwt.unshift({ snapshot, jwt });
    return jwt;
  }

  function retireJwt(snapshot: PolicySnapshot): void {
    const entry = installedJwt.find((e) => e.snapshot === snapshot);
    if (!entry) return;
    setTimeout(() => {
      entry.jwt.close();
      installedJwt.splice(installedJwt.indexOf(entry), 1);
    }, 30_000).unref();
  }

  function jwtFor(snapshot: PolicySnapshot): JwtAuthenticator {
    for (const e of installedJwt) if (e.snapshot === snapshot) return e.jwt;
    // A request that read its snapshot before two reloads and 30 s ago: give it its own, retired 30 s later
    // (its keys come from the shared cache, so this costs no fetch for a URI still in use).
    const jwt = installJwt(snapshot);
    retireJwt(snapshot);
    return jwt;
  }

  async function start(): Promise<void> {
    if (started) return;
    started = true;
    try {
      credentials = await CredentialStore.load({ certFile: config.tls.certFile, keyFile: config.tls.keyFile, trustBundleFile: config.tls.trustBundleFile, logger });
    } catch (err) {
      throw new StartupError(credentialsError(config, err));
    }
    if (config.jwksCaFile) {
      try { jwksFetcher = await jwksFetcherWithCa(config, jwksFetcher); } catch (err) { credentials.close(); throw err; }
    }
    const creds = credentials;
    try {
      crlStore = await CrlStore.load({ files: config.tls.crlFiles, logger });
    } catch (err) {
      throw new StartupError(`cannot load CRLs: ${err instanceof Error ? err.message : String(err)}`);
    }
    const crls = crlStore;
    metrics.setCertificateNotAfter(() => creds.current().notAfter.getTime());
    const created = await createPolicyStore({ paths: config.policies, options: config.compile, logger, metrics, ...(config.peersFile ? { peers: filePeerSource(config.peersFile) } : {}) });
    if ('diagnostics' in created) {
      const lines = created.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
      creds.close();
      throw new StartupError(`${created.diagnostics.some(isPeerDiagnostic) ? 'peer registry' : 'policies'} refused, nothing started:\n${lines.join('\n')}`);
    }
    const store = created.store;
    policyStore = store;
    // A new snapshot gets fresh JWT providers and rate-limit buckets; the previous authenticator stops refreshing.
    installJwt(store.current());
    store.onSwap((next, previous) => {
      rateLimiter.reset();
      installJwt(next);
      retireJwt(previous);
    });
    decisionLog = options.decisionLog ? options.decisionLog(metrics) : createDecisionLog({
      destination: config.decisionLog.destination,
      maxBufferedEvents: config.decisionLog.maxBufferedEvents,
      metrics,
      onError: (err) => logger.error({ event: 'decision_log_error', error: err.message }, 'decision log destination failed'),
    });
    const deps: ProxyDeps = {
      mode: config.mode,
      limits: config.limits,
      pathNormalization: config.compile.pathNormalization,
      rejectEncodedSlashes: config.rejectEncodedSlashes,
      policies: store,
      credentials: {
        serverOptions: () => creds.serverOptions(),
        onChange: (l) => creds.onChange(() => l()),
        ownSpiffeId: () => creds.current().ownSpiffeId,
      },
      verifyPeer: (socket) => verifyPeerCertificate(socket, creds.current().bundle, { now: Date.now(), trustDomains: config.tls.trustDomains, role: 'client', revocation: crls.current() }),
      jwtFor,
      sink: fanOut(decisionLog, metricsSink(metrics)),
      capture: config.decisionLog.capture,
      rateLimiter: (limit, peer, nowMs) => {
        const ok = rateLimiter.admit(limit, peer?.spiffeId ?? '', nowMs);
        if (!ok) metrics.recordRateLimited();
        return ok;
      },
      metrics: {
        connectionOpened: (l) => metrics.connectionOpened(l),
        connectionClosed: (l) => metrics.connectionClosed(l),
        handshakeRejected: (l, reason) => metrics.recordConnection(l, reason === 'tls_error' ? 'tls_error' : 'identity_rejected'),
        upstreamDuration: (outcome, seconds) => metrics.recordUpstream(upstreamOutcomeLabels[outcome] ?? 'error', seconds),
        connectionAccepted: (l) => metrics.recordConnection(l, 'accepted'),
        connectionDropped: (l) => metrics.recordConnection(l, 'limit_exceeded'),
        h2StreamOpened: () => metrics.http2StreamOpened(),
        h2StreamClosed: () => metrics.http2StreamClosed(),
        jwtResult: (result) => metrics.recordJwt(result),
      },
    };
    try {
      for (const l of config.listeners) {
        listeners.push(l.protocol === 'tcp' ? await startTcpListener(l, deps, { onPolicySwap: (fn) => store.onSwap(fn) }) : await startInbound(l, deps));
      }
      for (const o of config.outbound) {
        outbound.push(await startOutboundListener(o, {
          credentials: creds,
          trustDomains: config.tls.trustDomains,
          revocation: () => crls.current(),
          decisionSink: deps.sink,
          metrics: deps.metrics,
          logger,
          timeouts: { connectMs: config.limits.upstreamConnectTimeoutMs, headersMs: config.limits.upstreamTimeoutMs, idleMs: config.limits.idleTimeoutMs },
        }));
      }
      const readiness = () => {
        const reasons = listeners.length === config.listeners.length ? [] : ['listeners starting'];
        if (draining) reasons.push('draining');
        return { ready: reasons.length === 0, reasons };
      };
      if (options.serveAdmin !== false) admin = await startAdminServer({ listen: config.admin, metrics, policyStore: store, readiness, version: packageVersion() });
      if (config.statusListen) {
        status = await startAdminServer({ listen: config.statusListen, metrics, policyStore: store, readiness, version: packageVersion(), statusOnly: true });
      }
    } catch (err) {
      await stop();
      throw new StartupError(`cannot listen: ${err instanceof Error ? err.message : String(err)}`);
    }
    for (const l of listeners) {
      const a = l.address();
      logger.info({ event: 'listening', listener: l.name, address: `${a.address}:${a.port}`, mode: config.mode }, 'inbound listener ready');
    }
    // The bound addresses, so a port given as 0 can be found (as the inbound listeners' above).
    if (admin) logger.info({ event: 'listening', listener: 'admin', address: `${admin.address.host}:${admin.address.port}` }, 'admin listener ready');
    if (status) logger.info({ event: 'listening', listener: 'status', address: `${status.address.host}:${status.address.port}` }, 'status listener ready');
  }

  async function stop(): Promise<void> {
    await Promise.all(listeners.map((l) => l.drain(config.limits.drainTimeoutMs)));
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all(outbound.map((o) => o.close()));
    await admin?.close();
    await status?.close();
    await policyStore?.close();
    credentials?.close();
    crlStore?.close();
    for (const e of installedJwt.splice(0)) e.jwt.close();
    jwksCache.close();
    await jwksFetcher.close();
    await decisionLog?.close(2000);
  }

  return {
    config,
    get listeners() { return listeners; },
    get admin() { return admin; },
    metrics,
    get policyStore() { return policyStore; },
    start,
    stop,
    beginDrain() { draining = true; },
  };
}
