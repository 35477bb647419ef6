// Owns one request of the outbound listener as named steps around the shared forwarders: the destination
// authority, the headers a hop forwards, the reply for a failure, and its one decision event. No policy is decided here.

import { issuePermit, type Permit } from '../policy/decision.js';
import { publishDecision, type DecisionRecord } from '../observe/decision-event.js';
import type { DecisionSink } from '../observe/types.js';
import { sendReply, type Exchange } from './exchange.js';
import { hopRequestHeaders } from './headers.js';
import { isGrpcContentType, replyFor, type Refusal, type Reply } from './respond.js';
import type { ProxyMetrics } from './types.js';
import { grpcDeadlineMs, type ForwardOutcome, type Forwarder, type UpstreamRequest } from './upstream.js';
import type { Destination } from './outbound-destination.js';

/** What every request of one outbound listener shares. */
export interface OutboundRoute {
  listener: string;
  /** The bound port (loopback authorities naming it are the listener itself, not a destination). */
  port: number;
  target: Destination;
  expectIdentity: string;
  /** Wait for the destination's response headers, restarted by each body chunk sent (a gRPC caller's `grpc-timeout` is a deadline of its own). */
  headersTimeoutMs: number;
  sink: DecisionSink;
  metrics?: ProxyMetrics | undefined;
  now: () => number;
}

/**
 * Outbound decides no policy (the destination's sidecar does, on the identity we present): every request the
 * local app sends is permitted, and it can only reach a destination whose SPIFFE ID was verified.
 */
const outboundPermit = issuePermit({
  verdict: 'allow', reason: 'outbound', dialect: null, policy: null, rule: null, authorization: null, audit: null, shadow: null, effects: null,
}, 'enforce') as Permit;

const loopbackHosts = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * Step 1, the authority: an app that names the listener itself (`localhost:<port>`, or nothing) means the
 * destination, so the request carries the destination's authority; any other authority is sent as the app wrote it.
 */
export function destinationAuthority(authority: string | undefined, route: OutboundRoute): string {
  if (!authority) return route.target.authority;
  const lower = authority.toLowerCase();
  for (const host of loopbackHosts) if (lower === host || lower === `${host}:${route.port}`) return route.target.authority;
  return authority;
}

/** Step 2, the upstream request: the app's own request with hop-by-hop headers removed (headers.ts). */
export function outboundRequest(ex: Exchange<unknown>, route: OutboundRoute): UpstreamRequest {
  const { headers, authority } = hopRequestHeaders(ex.rawHeaders);
  const contentType = headers['content-type'];
  // gRPC needs HTTP/2: an HTTP/1.1 caller is plain HTTP whatever its content-type.
  const grpc = ex.httpVersion === '2' && typeof contentType === 'string' && isGrpcContentType(contentType);
  return {
    method: ex.method,
    path: ex.target,
    authority: destinationAuthority(authority, route),
    headers,
    grpc,
    headersTimeoutMs: route.headersTimeoutMs,
    deadlineMs: grpc ? grpcDeadlineMs(headers['grpc-timeout']) : undefined,
    // The local app is not a caller to guard against: its body may pause as long as it likes.
    bodyTimeoutMs: 0,
  };
}

/** Step 3, a failure's reply: respond.ts's, with the reason also in `x-portcullis-reason` for the local app. */
export function outboundReply(reply: Reply): Reply {
  return { ...reply, headers: { ...reply.headers, 'x-portcullis-reason': reply.reason } };
}

/** The upstream outcome a failure is logged and counted under. */
function failureOutcome(refusal: Refusal, reply: Reply): string {
  if (refusal.kind !== 'upstream_identity') return reply.reason;
  return refusal.reason === 'server_tls_failed' ? 'tls_failed' : 'identity_rejected';
}

interface Finished {
  status: number;
  grpcStatus: number | null;
  verdict: string;
  reason: string;
  outcome: string;
  upstreamStatus: number | null;
}

/** Step 4, the one decision event (observe/decision-event.ts): the verified destination and what happened. */
function publish(route: OutboundRoute, ex: Exchange<unknown>, request: UpstreamRequest, started: number, f: Finished): void {
  const latencyUs = Math.max(0, Math.round((route.now() - started) * 1000));
  const record: DecisionRecord = {
    decision: null,
    override: { verdict: f.verdict, reason: f.reason },
    mode: 'enforce',
    wouldDeny: false,
    policyRevision: '',
    peer: { spiffeId: route.expectIdentity, ip: route.target.host },
    request: { protocol: request.grpc ? 'grpc' : 'http', method: ex.method, authority: request.authority, path: ex.target, listener: route.listener, port: route.port },
    jwt: null,
    status: f.status,
    grpcStatus: f.grpcStatus,
    latencyUs,
    upstream: { outcome: f.outcome, status: f.upstreamStatus, durationUs: latencyUs },
    time: route.now(),
  };
  try { publishDecision(route.sink, record); } catch { /* the log must never break the data path */ }
  route.metrics?.upstreamDuration?.(f.outcome, latencyUs / 1e6);
}

/** Runs one outbound request: the steps above around the forwarder, then exactly one decision event. */
export async function handleOutbound(ex: Exchange<unknown>, route: OutboundRoute, forwarder: Forwarder): Promise<void> {
  const started = route.now();
  const request = outboundRequest(ex, route);
  const grpc = request.grpc;
  let outcome: ForwardOutcome;
  try {
    outcome = await forwarder.forward(outboundPermit, request, ex);
  } catch {
    outcome = { ok: false, refusal: { kind: 'upstream_error' } };
  }
  if (outcome.ok) {
    const grpcStatus = grpc ? (outcome.grpcStatus ?? null) : null;
    publish(route, ex, request, started, { status: outcome.status, grpcStatus, verdict: 'allow', reason: 'forwarded', outcome: outcome.outcome, upstreamStatus: outcome.status });
    return;
  }
  const reply = outboundReply(replyFor(outcome.refusal));
  if (!ex.bodyless) ex.body.resume();
  let status = reply.status;
  try { status = sendReply(ex, reply, grpc); } catch { ex.response.abort(); }
  publish(route, ex, request, started, { status, grpcStatus: grpc ? reply.grpcStatus : null, verdict: 'error', reason: reply.reason, outcome: failureOutcome(outcome.refusal, reply), upstreamStatus: null });
}
