// Owns building the decision event (schema v1, ARCHITECTURE.md) from a typed record the data plane fills:
// inbound HTTP, opaque TCP and outbound alike. Writing the event is decision-log.ts's job, never this module's.

import { randomBytes } from 'node:crypto';
import type { DecisionEventV1, DecisionRecord, DecisionSink } from './types.js';
import { capturedHeaders, queryKeys, rawPathOf, type CaptureFacts } from './capture.js';

export type { DecisionRecord } from './types.js';

type PolicyRef = { kind: string; namespace: string; name: string };

const idPrefix = randomBytes(6).toString('hex');
let idCounter = 0;

/** Unique within the process and practically across processes: random process prefix + counter. */
export function newDecisionId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${idPrefix}-${idCounter.toString(36)}`;
}

/** The event's verdict: a refusal's own, else the engine's; a record with neither is an internal error. */
export const verdictOf = (r: DecisionRecord): string => r.override?.verdict ?? r.decision?.verdict ?? 'error';
/** The event's reason, chosen like its verdict. */
export const reasonOf = (r: DecisionRecord): string => r.override?.reason ?? r.decision?.reason ?? 'internal_error';

/**
 * Hands one decision to a sink. The id and time are fixed here, once, so every sink of a fan-out tells of the
 * same event; a sink that writes records itself (the decision log) gets the record and no event object is built.
 */
export function publishDecision(sink: DecisionSink, r: DecisionRecord): void {
  r.decisionId ??= newDecisionId();
  r.time ??= Date.now();
  if (sink.publishRecord) sink.publishRecord(r);
  else sink.publish(buildDecisionEvent(r));
}

const policyOf = (ref: PolicyRef | null | undefined): DecisionEventV1['policy'] => (ref ? { kind: ref.kind, namespace: ref.namespace, name: ref.name } : null);

/**
 * Builds the v1 event; the one place its fields are filled, in the order every line has. A record with
 * neither a decision nor an override is an internal error (fail closed, and said so). decision-json.ts
 * writes the same event's line straight from a record (decisionRecordJson), byte for byte JSON.stringify of this.
 */
export function buildDecisionEvent(r: DecisionRecord): DecisionEventV1 {
  const d = r.decision;
  const event: DecisionEventV1 = {
    v: 1,
    decision_id: r.decisionId ?? newDecisionId(),
    time: new Date(r.time ?? Date.now()).toISOString(),
    mode: r.mode,
    verdict: verdictOf(r),
    would_deny: r.wouldDeny,
    dialect: d?.dialect ?? null,
    tier: d?.tier ?? null,
    policy: policyOf(d?.policy),
    rule: d?.rule ?? null,
    authorization: d?.authorization ?? null,
    reason: reasonOf(r),
    audit: d?.audit ? { policy: policyOf(d.audit.policy) as PolicyRef, rule: d.audit.rule } : null,
    shadow: d?.shadow ? { verdict: d.shadow.verdict, action: d.shadow.action, policy: policyOf(d.shadow.policy), rule: d.shadow.rule } : null,
    peer: { spiffe_id: r.peer.spiffeId, ip: r.peer.ip },
    request: { protocol: r.request.protocol, method: r.request.method, authority: r.request.authority, path: r.request.path, listener: r.request.listener, port: r.request.port },
    jwt: r.jwt ? { iss: r.jwt.iss, sub: r.jwt.sub } : null,
    status: r.status,
    grpc_status: r.grpcStatus,
    policy_revision: r.policyRevision,
    latency_us: r.latencyUs,
  };
  const u = r.upstream;
  if (u) {
    event.upstream = { outcome: u.outcome, status: u.status, duration_us: u.durationUs };
    if (u.bytesSent !== undefined) event.upstream.bytes_sent = u.bytesSent;
    if (u.bytesReceived !== undefined) event.upstream.bytes_received = u.bytesReceived;
  }
  if (r.capture) addCapture(event, r.capture);
  return event;
}

/** The replay attributes (additive v1 fields, docs/replay.md): what any dialect's policies can test. */
function addCapture(event: DecisionEventV1, c: CaptureFacts): void {
  const ctx = c.context;
  const request = event.request;
  if (ctx.protocol !== 'tcp') {
    const target = c.target ?? ctx.path;
    const rawPath = rawPathOf(target);
    if (rawPath !== ctx.path) request.raw_path = rawPath;
    request.query_keys = queryKeys(target);
    request.headers = c.headers ? capturedHeaders(c.headers, c.redaction) : {};
  }
  if (ctx.destinationIp !== undefined) request.destination_ip = ctx.destinationIp;
  if (ctx.sni !== undefined) request.sni = ctx.sni;
  if (ctx.remoteIp !== ctx.sourceIp) event.peer.remote_ip = ctx.remoteIp;
  if (ctx.jwt && event.jwt) event.jwt.claims = ctx.jwt.claims;
  event.capture = 'replayable';
}
