// Owns `portcullis check`'s view of a request: request JSON -> an in-memory exchange run through the data
// plane's own stages (proxy/stages.ts) -> the decision and the reply the sidecar would send.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { RequestInput, RequestContext, RequestProtocol, PeerIdentity } from '../policy/context-types.js';
import type { Decision, Verdict } from '../policy/decision.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { LocalRateLimiter } from '../policy/linkerd-rate-limit.js';
import type { JwtAuthenticator } from '../jwt/types.js';
import { createJwtAuthenticator } from '../jwt/authenticator.js';
import { parseSpiffeId, toPeerIdentity } from '../identity/spiffe.js';
import { defaultRequestSettings, type RequestSettings } from '../config/request-settings.js';
import type { LimitsConfig } from '../config/types.js';
import { memoryExchange, recordingForwarder } from '../proxy/memory-exchange.js';
import { handleRequest } from '../proxy/stages.js';
import { judgeConnection } from '../proxy/tcp.js';
import { refusalForDecision, replyFor, statusOnWire, type Reply } from '../proxy/respond.js';
import type { ConnectionInfo, ProxyDeps } from '../proxy/types.js';

/** The request JSON `portcullis check` reads (one object, or one per NDJSON line). */
export interface CheckRequest {
  method?: string;
  /** Raw request target as sent: path, query and all. */
  path?: string;
  host?: string;
  headers?: Record<string, string | string[]>;
  /** SPIFFE ID of an mTLS caller, or null for a plaintext caller. */
  peer?: string | null;
  sourceIp?: string;
  remoteIp?: string;
  destinationIp?: string;
  port?: number;
  sni?: string;
  protocol?: RequestProtocol;
  /** Milliseconds on a logical clock for rate limits in an NDJSON stream (default 0). */
  time?: number;
}

export interface PolicyName {
  dialect: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface CheckOutput {
  verdict: Verdict;
  status: number;
  grpcStatus: number | null;
  audit: { policy: PolicyName; rule: string | null } | null;
  shadow: { verdict: string; action: string; policy: PolicyName | null; rule: string | null } | null;
  policy: PolicyName | null;
  /** The dialect's tier that decided (`http`, a Calico tier, `admin`, ...), or null. */
  tier: string | null;
  rule: string | null;
  reason: string;
  authorization: string | null;
  /** True when a `log` rule (Istio AUDIT, Calico Log) recorded the request; absent otherwise. */
  log?: true;
  /**
   * Edits of the forwarded request's headers, applied in this order (Linkerd RequestHeaderModifier, Cilium
   * headerMatches ADD/DELETE/REPLACE); absent when the request is not forwarded or nothing is edited.
   */
  headerEdits?: { remove: string[]; set: { name: string; value: string }[]; add: { name: string; value: string }[] };
  /** Response body text for JWT failures (Envoy's wording), else absent. */
  message?: string;
}

/** Input that cannot be decided at all (exit 2), as opposed to a request that is refused. */
export class CheckInputError extends Error {}

export interface DecideDeps {
  authenticator: JwtAuthenticator;
  rateLimiter?: LocalRateLimiter;
  /** run's request limits (--max-header-count, ...): the schema defaults unless given. */
  limits?: LimitsConfig;
}

export interface DecideResult {
  output: CheckOutput;
  /** The context the engine saw (undefined when the request was refused before policy). */
  context: RequestContext | undefined;
  decision: Decision | undefined;
}

export async function decideRequest(snapshot: PolicySnapshot, request: CheckRequest, deps: DecideDeps): Promise<CheckOutput> {
  return (await decideRequestDetailed(snapshot, request, deps)).output;
}

export function decideRequestDetailed(snapshot: PolicySnapshot, request: CheckRequest, deps: DecideDeps): Promise<DecideResult> {
  return requestDecider(snapshot, deps)(request);
}

/**
 * decideRequestDetailed for many requests under one snapshot and deps: the data plane's dependencies are
 * assembled once, not per request (a replay decides a million). One request at a time: each call's logical
 * time (`request.time`) holds until the next call.
 */
export function requestDecider(snapshot: PolicySnapshot, deps: DecideDeps): (request: CheckRequest) => Promise<DecideResult> {
  let timeMs = 0;
  const proxyDeps = checkProxyDeps(snapshot, deps, () => timeMs);
  return (request) => {
    timeMs = request.time ?? 0;
    return decide(snapshot, proxyDeps, request);
  };
}

async function decide(snapshot: PolicySnapshot, proxyDeps: ProxyDeps, request: CheckRequest): Promise<DecideResult> {
  const input = toRequestInput(request);
  const isGrpc = input.protocol === 'grpc';
  const conn: ConnectionInfo = {
    listener: { name: 'check', listen: { host: '127.0.0.1', port: 0 }, upstream: `http://127.0.0.1:${input.port}`, mode: 'permissive', workloadPort: input.port },
    tls: input.peer !== null,
    peer: input.peer,
    peerCertHash: null,
    sourceIp: input.sourceIp,
    ...(input.remoteIp !== undefined && input.remoteIp !== input.sourceIp ? { remoteIp: input.remoteIp } : {}),
    sourcePort: 0,
    destinationIp: input.destinationIp,
    sni: input.sni,
  };
  if (input.protocol === 'tcp') {
    const j = judgeConnection(snapshot, conn, proxyDeps);
    if (!j.decision || !j.context) return { output: refused(replyFor({ kind: 'internal_error' }), false), context: undefined, decision: undefined };
    const reply = j.permit ? null : replyFor(refusalForDecision(j.decision, conn));
    return { output: toOutput(j.decision, reply, false), context: j.context, decision: j.decision };
  }
  const { ex } = memoryExchange({ conn, httpVersion: '1.1', method: input.method, target: input.path, rawHeaders: rawHeadersOf(input) });
  const state = await handleRequest(ex, proxyDeps, recordingForwarder());
  const decision = state.decision;
  const reply = state.reply ?? null;
  if (!decision || !state.ctx) {
    const output = refused(reply ?? replyFor({ kind: 'internal_error' }), isGrpc);
    if (reply?.verdict === 'unauthenticated') output.message = reply.body;
    return { output, context: state.ctx, decision: undefined };
  }
  // A local rate limit refuses an allowed request after the engine: the decision keeps its provenance.
  const final: Decision = reply?.verdict === 'rate_limited' && decision.verdict === 'allow'
    ? { ...decision, verdict: 'rate_limited', reason: 'rate_limited' }
    : decision;
  return { output: toOutput(final, reply, isGrpc), context: state.ctx, decision: final };
}

/** The data plane's dependencies for one offline decision: the snapshot given, the check authenticator, no I/O. */
let requestLimits: ProxyDeps['limits'] | undefined;

function checkProxyDeps(snapshot: PolicySnapshot, deps: DecideDeps, now: () => number): ProxyDeps {
  // Resolved from the config schema once when not given: a replay decides a million requests with them.
  const limits = deps.limits ?? (requestLimits ??= defaultRequestSettings().limits);
  const { workload } = snapshot.options;
  return {
    mode: 'enforce',
    limits,
    pathNormalization: snapshot.options.pathNormalization,
    rejectEncodedSlashes: snapshot.options.rejectEncodedSlashes === true,
    policies: { current: () => snapshot },
    credentials: { serverOptions: () => ({}), onChange: () => () => undefined, ownSpiffeId: () => `spiffe://${workload.trustDomain}/ns/${workload.namespace}/sa/${workload.serviceAccount}` },
    verifyPeer: () => ({ ok: false, reason: 'no_certificate', detail: 'check has no connection' }),
    jwtFor: () => deps.authenticator,
    // Nobody reads these events: none is built.
    sink: { publish: () => undefined },
    decisionEvents: false,
    capture: { mode: 'minimal', redactHeaders: [] },
    ...(deps.rateLimiter ? { rateLimiter: rateLimiterOf(deps.rateLimiter) } : {}),
    now,
  };
}

function rateLimiterOf(limiter: LocalRateLimiter): NonNullable<ProxyDeps['rateLimiter']> {
  return (limit, peer, nowMs) => limiter.admit(limit, peer?.spiffeId ?? '', nowMs);
}

/** Header lines as a client sends them: `host` first when given apart, then each value of each header. */
function rawHeadersOf(input: RequestInput): string[] {
  const raw: string[] = [];
  let hasHost = false;
  let hasContentType = false;
  for (const name in input.headers) {
    const value = input.headers[name] as string | string[];
    if (typeof value === 'string') raw.push(name, value);
    else for (const v of value) raw.push(name, v);
    const lower = name.length === 4 || name.length === 12 ? name.toLowerCase() : '';
    if (lower === 'host') hasHost = true;
    else if (lower === 'content-type') hasContentType = true;
  }
  // gRPC is recognised by its content type, as on the wire.
  if (input.protocol === 'grpc' && !hasContentType) raw.unshift('content-type', 'application/grpc');
  if (input.host !== '' && !hasHost) raw.unshift('host', input.host);
  return raw;
}

function refused(reply: Reply, isGrpc: boolean): CheckOutput {
  return {
    verdict: reply.verdict as Verdict, ...statusOnWire(reply, isGrpc),
    audit: null, shadow: null, policy: null, tier: null, rule: null, reason: reply.reason, authorization: null,
  };
}

/** The decision as `check` reports it; `reply` is the local reply the data plane sent (null: forwarded). */
function toOutput(d: Decision, reply: Reply | null, isGrpc: boolean): CheckOutput {
  const name = (p: { dialect: string; kind: string; namespace: string; name: string } | null): PolicyName | null =>
    p ? { dialect: p.dialect, kind: p.kind, namespace: p.namespace, name: p.name } : null;
  return {
    verdict: d.verdict,
    // What the data plane sends: gRPC callers get HTTP 200 with the grpc-status (respond.ts).
    ...statusOnWire(reply, isGrpc),
    audit: d.audit ? { policy: name(d.audit.policy)!, rule: d.audit.rule } : null,
    shadow: d.shadow ? { verdict: d.shadow.verdict, action: d.shadow.action, policy: name(d.shadow.policy), rule: d.shadow.rule } : null,
    policy: name(d.policy),
    tier: d.tier ?? null,
    rule: d.rule,
    reason: d.reason,
    authorization: d.authorization,
    ...(d.audit?.log === true ? { log: true as const } : {}),
    ...(reply === null && d.effects !== null && d.effects.removeHeaders.length + d.effects.setHeaders.length + d.effects.addHeaders.length > 0
      ? { headerEdits: { remove: [...d.effects.removeHeaders], set: [...d.effects.setHeaders], add: [...d.effects.addHeaders] } } : {}),
  };
}

/** Parsed peers by SPIFFE ID: a replay meets the same few callers a million times. Bounded; frozen, so shared safely. */
const peers = new Map<string, PeerIdentity | string>();
const MAX_CACHED_PEERS = 10_000;

function peerIdentityOf(spiffeId: string): PeerIdentity {
  let known = peers.get(spiffeId);
  if (known === undefined) {
    const parsed = parseSpiffeId(spiffeId);
    known = parsed.ok ? Object.freeze(toPeerIdentity(parsed.id)) : parsed.error;
    if (peers.size >= MAX_CACHED_PEERS) peers.clear();
    peers.set(spiffeId, known);
  }
  if (typeof known === 'string') throw new CheckInputError(`peer ${JSON.stringify(spiffeId)} is not a SPIFFE ID: ${known}`);
  return known;
}

export function toRequestInput(request: CheckRequest): RequestInput {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new CheckInputError('a request must be a JSON object');
  }
  const protocol = request.protocol ?? 'http';
  if (protocol !== 'http' && protocol !== 'grpc' && protocol !== 'tcp') {
    throw new CheckInputError(`protocol must be http, grpc or tcp, not ${JSON.stringify(protocol)}`);
  }
  const peer = request.peer !== undefined && request.peer !== null ? peerIdentityOf(String(request.peer)) : null;
  const port = request.port ?? 80;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CheckInputError(`port ${String(port)} is not a port number`);
  const headers: Record<string, string | string[]> = {};
  const given = request.headers ?? {};
  for (const k in given) {
    const v = given[k] as unknown;
    if (typeof v !== 'string' && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
      throw new CheckInputError(`header ${k} must be a string or a list of strings`);
    }
    headers[k] = v as string | string[];
  }
  const sourceIp = request.sourceIp ?? '127.0.0.1';
  return {
    protocol,
    method: protocol === 'tcp' ? '' : (request.method ?? (protocol === 'grpc' ? 'POST' : 'GET')),
    path: protocol === 'tcp' ? '' : (request.path ?? '/'),
    host: request.host ?? '',
    headers,
    peer,
    sourceIp,
    remoteIp: request.remoteIp ?? sourceIp,
    destinationIp: request.destinationIp,
    port,
    sni: request.sni,
    jwt: null,
  };
}

export interface CheckAuthenticatorOptions {
  now: () => number;
  /** `jwksUri` -> local file, so `check` verifies tokens of remote issuers without network. */
  jwksFiles?: Record<string, string>;
  /** run's JWT settings (--jwt-clock-skew, --max-jwt-bytes): the schema defaults unless given. */
  settings?: RequestSettings;
}

/** JWT verification for offline use: inline JWKS, file:// URIs, or URIs mapped to files; never the network. */
export function createCheckAuthenticator(snapshot: PolicySnapshot, options: CheckAuthenticatorOptions): JwtAuthenticator {
  const fetchJwks = async (uri: string): Promise<string> => {
    const mapped = options.jwksFiles?.[uri];
    if (mapped !== undefined) return readFile(mapped, 'utf8');
    if (uri.startsWith('file://')) return readFile(fileURLToPath(uri), 'utf8');
    throw new Error(`${uri}: remote JWKS are fetched only by \`portcullis run\`; map it to a file with --jwks ${uri}=FILE`);
  };
  // The same settings as `run` (config/schema.ts); whether `exp` is required is decided per provider.
  const { limits, jwks } = options.settings ?? defaultRequestSettings();
  return createJwtAuthenticator(snapshot.jwtProviders, {
    now: options.now,
    fetchJwks,
    clockSkewSeconds: jwks.clockSkewSeconds,
    requireExpiration: false,
    maxTokenBytes: limits.maxJwtBytes,
    cacheTtlMs: 600_000,
    refreshIntervalMs: 0,
    staleGraceMs: 0,
    unknownKidMinIntervalMs: 0,
  });
}
