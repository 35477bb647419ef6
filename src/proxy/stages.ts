// Owns the request lifecycle as an ordered list of named stages, each returning continue or respond
// (docs/proxy.md draws it with the status each stage can produce). Only a Permit reaches forward().

import { buildRequestContext } from '../policy/context.js';
import type { RequestContext, RequestInput } from '../policy/context-types.js';
import { issuePermit, type Decision, type Permit } from '../policy/decision.js';
import { evaluate } from '../policy/evaluate.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { AuthnResult, JwtHeaderEdits } from '../jwt/types.js';
import { publishDecision, type DecisionRecord } from '../observe/decision-event.js';
import { defaultCaptureSettings, redactionFor } from '../observe/capture.js';
import { sendReply, type Exchange } from './exchange.js';
import { cleanRequestHeaders, connectionForwardedClientCert, scanRequestHeaders, type ScannedRequestHeaders } from './headers.js';
import { removeQueryParams } from '../jwt/extract.js';
import { isGrpcContentType, linkerdError, refusalForDecision, replyFor, type Refusal, type Reply } from './respond.js';
import type { ConnectionInfo, ProxyDeps } from './types.js';
import { grpcDeadlineMs, type ForwardOutcome, type Forwarder, type UpstreamRequest } from './upstream.js';

/** Everything learned about one request so far; stages fill it in order. */
export interface RequestState {
  readonly ex: Exchange;
  /** performance.now() when the request arrived: a double, not a BigInt (no allocation per clock read). */
  readonly startMs: number;
  grpc: boolean;
  snapshot?: PolicySnapshot;
  scanned?: ScannedRequestHeaders;
  ctx?: RequestContext;
  authn?: AuthnResult;
  decision?: Decision;
  decidedMs?: number;
  permit?: Permit;
  /** The local reply sent instead of (or after a failed) forward; unset when the upstream answered. */
  reply?: Reply;
}

export type StageResult = { kind: 'continue' } | { kind: 'respond'; refusal: Refusal };

export interface Stage {
  name: string;
  run(state: RequestState, deps: ProxyDeps): StageResult | Promise<StageResult>;
}

const proceed: StageResult = { kind: 'continue' };

export const stages: readonly Stage[] = [
  {
    // The snapshot is read ONCE per request so no request is judged by two policy sets.
    name: 'read-snapshot',
    run(state, deps) {
      state.snapshot = deps.policies.current();
      return proceed;
    },
  },
  {
    name: 'scan-headers',
    run(state, deps) {
      const { ex } = state;
      if (ex.method === 'CONNECT') return { kind: 'respond', refusal: { kind: 'method_not_allowed', reason: 'connect_not_allowed' } };
      if (ex.framingError === 'http10_transfer_encoding') return { kind: 'respond', refusal: { kind: 'bad_request', reason: ex.framingError } };
      if (ex.framingError === 'unsupported_transfer_coding') return { kind: 'respond', refusal: { kind: 'not_implemented', reason: ex.framingError } };
      const scan = scanRequestHeaders(ex.rawHeaders, { maxHeaderCount: deps.limits.maxHeaderCount, ownedNames: (state.snapshot as PolicySnapshot).jwtOutputHeaders });
      if (!scan.ok) return { kind: 'respond', refusal: scan.refusal };
      const h = scan.headers;
      state.scanned = h;
      state.grpc = isGrpcContentType(h.contentType);
      // h2c smuggling (PC-13): never honoured; WebSocket upgrades take the 'upgrade' path, not this one.
      if (h.upgrade !== undefined && !(ex.isUpgrade === true && h.upgrade === 'websocket' && ex.method === 'GET')) return { kind: 'respond', refusal: { kind: 'bad_request', reason: 'h2c_upgrade' } };
      if (ex.httpVersion === '2') {
        // nghttp2 advertises SETTINGS_MAX_HEADER_LIST_SIZE but does not enforce it on what it receives (only
        // its own 64 KiB per field): count as RFC 9113 §6.5.2 does (name + value + 32 per field), 431 above.
        let listSize = 0;
        for (let i = 0; i < ex.rawHeaders.length; i += 2) listSize += (ex.rawHeaders[i] as string).length + (ex.rawHeaders[i + 1] as string).length + 32;
        if (listSize > deps.limits.maxHeaderBytes) return { kind: 'respond', refusal: { kind: 'headers_too_large', reason: 'headers_too_large' } };
        const hostHeader = h.original['host'];
        const authority = h.original[':authority'];
        if (typeof hostHeader === 'string' && typeof authority === 'string' && hostHeader.toLowerCase() !== authority.toLowerCase()) {
          return { kind: 'respond', refusal: { kind: 'bad_request', reason: 'bad_authority' } };
        }
      }
      return proceed;
    },
  },
  {
    name: 'build-context',
    run(state, deps) {
      const input = requestInput(state, null);
      const built = buildRequestContext(input, { pathNormalization: deps.pathNormalization, rejectEncodedSlashes: deps.rejectEncodedSlashes });
      if (!built.ok) return { kind: 'respond', refusal: { kind: 'bad_request', reason: built.reason } };
      state.ctx = built.context;
      return proceed;
    },
  },
  {
    name: 'authenticate',
    // Synchronous unless the snapshot has JWT providers: only then does a request pay for a promise.
    run(state, deps) {
      const snapshot = state.snapshot as PolicySnapshot;
      if (snapshot.jwtProviders.length === 0) {
        state.authn = noAuthn;
        return proceed;
      }
      const result = deps.jwtFor(snapshot).authenticate({ method: state.ex.method, target: state.ex.target, headers: (state.scanned as ScannedRequestHeaders).original });
      return result instanceof Promise ? result.then((r) => authenticated(state, deps, r)) : authenticated(state, deps, result);
    },
  },
  {
    name: 'authorize',
    run(state, deps) {
      const decision = evaluate(state.snapshot as PolicySnapshot, state.ctx as RequestContext);
      state.decision = decision;
      state.decidedMs = performance.now();
      const permit = issuePermit(decision, deps.mode);
      if (!permit) return { kind: 'respond', refusal: refusalForDecision(decision, state.ex.conn) };
      state.permit = permit;
      return proceed;
    },
  },
  {
    // Linkerd route filters that end the exchange; an audit-mode would-deny skips them (it never matched a route to act on).
    name: 'route-effects',
    run(state, deps) {
      const permit = state.permit as Permit;
      const effects = permit.decision.effects;
      if (!effects || permit.wouldDeny) return proceed;
      if (effects.redirect) return { kind: 'respond', refusal: { kind: 'redirect', reason: 'redirect', status: effects.redirect.status, location: effects.redirect.location } };
      if (effects.rateLimit && deps.rateLimiter) {
        const admitted = deps.rateLimiter(effects.rateLimit, (state.ctx as RequestContext).peer, (deps.now ?? Date.now)());
        if (!admitted) {
          if (deps.mode === 'audit') return proceed;
          // Local rate limits exist only in Linkerd, so the refusal is rendered Linkerd's way.
          return { kind: 'respond', refusal: { kind: 'rate_limited', reason: 'rate_limited', linkerd: linkerdError('rate_limited', state.ex.conn) } };
        }
      }
      return proceed;
    },
  },
];

/** Shared by every request without JWT providers (read, never written). */
const noAuthn: AuthnResult = { kind: 'none', edits: { remove: [], set: {} } };

function authenticated(state: RequestState, deps: ProxyDeps, result: AuthnResult): StageResult {
  const ctx = state.ctx as RequestContext;
  state.authn = result;
  deps.metrics?.jwtResult?.(result.kind === 'failed' ? result.reason : result.kind);
  if (result.kind === 'failed') {
    const scheme = state.ex.conn.tls ? 'https' : 'http';
    return { kind: 'respond', refusal: { kind: 'unauthenticated', reason: result.reason, status: result.status, message: result.message, realm: `${scheme}://${ctx.authority}${ctx.path}` } };
  }
  // Policy judges the request as it will be forwarded: JWT edits (token removal, claim outputs,
  // query-borne token removal) are applied before authorization, as Envoy's jwt_authn runs before RBAC.
  const edited = applyJwtEdits(state, deps, result.edits, result.kind === 'verified' ? result.jwt : null);
  if (edited) return edited;
  return proceed;
}

/** Re-cleans the headers with the JWT edits and rebuilds the context from them (the one cleaning step, headers.ts). */
function applyJwtEdits(state: RequestState, deps: ProxyDeps, edits: JwtHeaderEdits, jwt: RequestInput['jwt']): StageResult | null {
  const scanned = state.scanned as ScannedRequestHeaders;
  // No verified token and edits that change nothing present (the usual tokenless request): the context stands.
  if (jwt === null && !changesRequest(edits, scanned.forPolicy)) return null;
  const cleaned = cleanRequestHeaders(scanned.seen, { ownedNames: (state.snapshot as PolicySnapshot).jwtOutputHeaders, jwtEdits: edits });
  if (!cleaned.ok) return { kind: 'respond', refusal: cleaned.refusal };
  state.scanned = { ...scanned, forPolicy: cleaned.forPolicy };
  const target = edits.removeQueryParams && edits.removeQueryParams.length > 0 ? removeQueryParams(state.ex.target, edits.removeQueryParams) : state.ex.target;
  const built = buildRequestContext({ ...requestInput(state, jwt), path: target }, { pathNormalization: deps.pathNormalization, rejectEncodedSlashes: deps.rejectEncodedSlashes });
  if (!built.ok) return { kind: 'respond', refusal: { kind: 'bad_request', reason: built.reason } };
  state.ctx = built.context;
  return null;
}

function changesRequest(edits: JwtHeaderEdits, forwarded: Readonly<Record<string, string | string[]>>): boolean {
  if (edits.removeQueryParams !== undefined && edits.removeQueryParams.length > 0) return true;
  for (const name in edits.set) if (Object.hasOwn(edits.set, name)) return true;
  return edits.remove.some((name) => Object.hasOwn(forwarded, name.toLowerCase()));
}

function requestInput(state: RequestState, jwt: RequestInput['jwt']): RequestInput {
  const { ex } = state;
  const conn = ex.conn;
  const scanned = state.scanned as ScannedRequestHeaders;
  const input: RequestInput = {
    protocol: state.grpc ? 'grpc' : 'http',
    method: ex.method,
    path: ex.target,
    host: scanned.host ?? '',
    headers: scanned.forPolicy,
    peer: conn.peer,
    sourceIp: conn.sourceIp,
    port: conn.listener.workloadPort,
    jwt,
  };
  if (conn.remoteIp !== undefined) input.remoteIp = conn.remoteIp;
  if (conn.destinationIp !== undefined) input.destinationIp = conn.destinationIp;
  if (conn.sni !== undefined) input.sni = conn.sni;
  return input;
}

/** Headers only Portcullis sets upstream: whatever a client, a JWT output or a route filter put there is replaced. */
function isPortcullisOwn(name: string): boolean {
  return name === 'x-forwarded-client-cert' || name === 'l5d-client-id' || name.startsWith('x-forwarded-') || name.startsWith('x-portcullis-');
}

/** The upstream request, from validated fields only (PC-16); Portcullis' own headers are set last. */
export function buildUpstreamRequest(state: RequestState, deps: ProxyDeps, ownSpiffeId: string): UpstreamRequest {
  const ctx = state.ctx as RequestContext;
  const scanned = state.scanned as ScannedRequestHeaders;
  // A copy of `forPolicy` (headers.ts), own names only, added one by one from {} so that copies of the same
  // header set share their maps. Not a spread: a spread site sees every client's header set, and there V8 gives
  // each copy a map of its own, which every later store and node:http2's header walk then pays for.
  const headers: Record<string, string | string[]> = {};
  const forPolicy = scanned.forPolicy;
  for (const name of Object.keys(forPolicy)) headers[name] = forPolicy[name] as string | string[];
  // JWT edits are already in `forPolicy` (applied before policy by the authenticate stage).
  const effects = (state.permit as Permit).wouldDeny ? null : (state.permit as Permit).decision.effects;
  if (effects) {
    for (const name of effects.removeHeaders) delete headers[name.toLowerCase()];
    for (const { name, value } of effects.setHeaders) headers[name.toLowerCase()] = value;
    for (const { name, value } of effects.addHeaders) {
      const key = name.toLowerCase();
      const prev = headers[key];
      headers[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
    }
  }
  // Portcullis' own set, after every edit so nothing (client, JWT output, route filter) can override it. The
  // client's copies were stripped with the other spoofable headers (headers.ts); only an edit can add one back.
  if (effects) {
    for (const { name } of effects.setHeaders) if (isPortcullisOwn(name.toLowerCase())) delete headers[name.toLowerCase()];
    for (const { name } of effects.addHeaders) if (isPortcullisOwn(name.toLowerCase())) delete headers[name.toLowerCase()];
  }
  const jwtSet = state.authn !== undefined && state.authn.kind !== 'failed' ? state.authn.edits.set : undefined;
  if (jwtSet) for (const name in jwtSet) if (isPortcullisOwn(name.toLowerCase())) delete headers[name.toLowerCase()];
  const conn = state.ex.conn;
  const xfcc = connectionForwardedClientCert(conn, ownSpiffeId);
  if (xfcc !== null) headers['x-forwarded-client-cert'] = xfcc;
  headers['x-forwarded-proto'] = conn.tls ? 'https' : 'http';
  return {
    method: ctx.method,
    path: ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path,
    authority: ctx.authority,
    headers,
    grpc: state.grpc,
    headersTimeoutMs: deps.limits.upstreamTimeoutMs,
    deadlineMs: state.grpc ? grpcDeadlineMs(scanned.original['grpc-timeout']) : undefined,
    bodyTimeoutMs: deps.limits.bodyTimeoutMs,
  };
}

/** Whole microseconds between two performance.now() readings. */
function micros(fromMs: number, toMs: number): number {
  return Math.floor((toMs - fromMs) * 1000);
}

/**
 * The decision record of a request for the one event builder (observe/decision-event.ts). `override` names a
 * refusal that did not come from the engine (parse error, JWT, rate limit, redirect); the decision's provenance
 * is kept whenever one exists.
 */
function decisionRecord(state: RequestState, deps: ProxyDeps, status: number, grpcStatus: number | null, override: { verdict: string; reason: string } | null, upstream?: DecisionRecord['upstream']): DecisionRecord | null {
  if (deps.decisionEvents === false) return null;
  const ctx = state.ctx;
  const conn: ConnectionInfo = state.ex.conn;
  const jwt = ctx?.jwt ?? null;
  const capture = deps.capture ?? defaultCaptureSettings;
  const record: DecisionRecord = {
    decision: state.decision ?? null,
    override,
    mode: deps.mode,
    wouldDeny: state.permit?.wouldDeny ?? false,
    policyRevision: state.snapshot?.revision ?? '',
    peer: { spiffeId: conn.peer?.spiffeId ?? null, ip: conn.sourceIp },
    request: {
      protocol: state.grpc ? 'grpc' : state.ex.httpVersion === '2' ? 'http2' : 'http1',
      method: ctx?.method ?? state.ex.method.slice(0, 32),
      authority: ctx?.authority ?? '',
      path: ctx?.path ?? '',
      listener: conn.listener.name,
      port: conn.listener.workloadPort,
    },
    jwt: jwt ? { iss: jwt.issuer, sub: jwt.subject } : null,
    status,
    grpcStatus,
    latencyUs: micros(state.startMs, state.decidedMs ?? performance.now()),
    time: (deps.now ?? Date.now)(),
    // Every field the record will have is in the literal: one object of one shape, none added afterwards.
    decisionId: undefined,
    upstream,
    // Only a request that reached a context can be decided again; one refused earlier has nothing to replay.
    capture: ctx && state.scanned && state.snapshot && capture.mode === 'replayable'
      ? { context: ctx, target: state.ex.target, headers: state.scanned.original, redaction: redactionFor(state.snapshot, capture) }
      : undefined,
  };
  return record;
}

/** One decision event per request (none when deps.decisionEvents is false); the log writes its line from the record, without an event object. */
function publish(deps: ProxyDeps, record: DecisionRecord | null): void {
  if (record === null) return;
  try { publishDecision(deps.sink, record); } catch { /* a failing sink never fails the request */ }
}

/**
 * Runs one request to completion: stages in order, then the forwarder with the Permit, then exactly one
 * decision event. Any exception before forwarding is a refusal (fail closed, never forwarded).
 */
export async function handleRequest(ex: Exchange, deps: ProxyDeps, forwarder: Forwarder): Promise<RequestState> {
  // Every field the stages fill is in the literal: one object of one shape, no property added per stage.
  const state: RequestState = {
    ex, startMs: performance.now(), grpc: false,
    snapshot: undefined, scanned: undefined, ctx: undefined, authn: undefined, decision: undefined, decidedMs: undefined, permit: undefined, reply: undefined,
  };
  let refusal: Refusal | null = null;
  try {
    // By index: a for-of iterator would be one more object per request, held across the JWT stage's await.
    for (let i = 0; i < stages.length; i++) {
      // Await only a stage that is actually asynchronous (JWT): the others cost no promise or microtask hop.
      const pending = (stages[i] as Stage).run(state, deps);
      const result = pending instanceof Promise ? await pending : pending;
      if (result.kind === 'respond') { refusal = result.refusal; break; }
      if (ex.aborted) break;
    }
  } catch {
    refusal = { kind: 'internal_error' };
    state.permit = undefined;
  }
  if (!refusal && ex.aborted) {
    // The client went away while we decided: nothing to answer, nothing forwarded; still one event.
    publish(deps, decisionRecord(state, deps, 499, null, state.decision ? null : { verdict: 'error', reason: 'client_aborted' }, { outcome: 'client_aborted', status: null, durationUs: 0 }));
    return state;
  }
  if (refusal || !state.permit) {
    const reply = replyFor(refusal ?? { kind: 'internal_error' });
    state.reply = reply;
    // A refused body is never read into memory; the connection closes if the client insists on sending it.
    if (!ex.bodyless) { ex.closeAfterResponse(); ex.body.resume(); }
    let status = reply.status;
    try { status = sendReply(ex, reply, state.grpc); } catch { ex.response.abort(); }
    const fromEngine = state.decision !== undefined && state.permit === undefined && refusal !== null && refusal.kind !== 'unauthenticated' && refusal.kind !== 'internal_error';
    publish(deps, decisionRecord(state, deps, status, state.grpc ? reply.grpcStatus : null, fromEngine ? null : { verdict: reply.verdict, reason: reply.reason }));
    return state;
  }
  const upstreamStart = performance.now();
  let outcome: ForwardOutcome;
  try {
    outcome = await forwarder.forward(state.permit, buildUpstreamRequest(state, deps, deps.credentials.ownSpiffeId()), ex);
  } catch {
    outcome = { ok: false, refusal: { kind: 'upstream_error' } };
  }
  const upstreamUs = micros(upstreamStart, performance.now());
  deps.metrics?.upstreamDuration?.(outcome.ok ? outcome.outcome : replyFor(outcome.refusal).reason, upstreamUs / 1e6);
  if (outcome.ok) {
    publish(deps, decisionRecord(state, deps, outcome.status, outcome.grpcStatus ?? null, null, { outcome: outcome.outcome, status: outcome.status, durationUs: upstreamUs }));
    return state;
  }
  const reply = replyFor(outcome.refusal);
  state.reply = reply;
  // The rest of a stalled body is never read: the connection (h1) or stream (h2) ends after the 408.
  if (outcome.refusal.kind === 'body_timeout') { ex.closeAfterResponse(); ex.body.resume(); }
  let status = reply.status;
  try { status = sendReply(ex, reply, state.grpc); } catch { ex.response.abort(); }
  publish(deps, decisionRecord(state, deps, status, state.grpc ? reply.grpcStatus : null, null, { outcome: reply.reason, status: null, durationUs: upstreamUs }));
  return state;
}
