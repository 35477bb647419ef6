// Owns the decision event's NDJSON text: byte for byte what JSON.stringify(event) writes (schema v1,
// ARCHITECTURE.md), from code that knows the event's fixed shape instead of walking it generically.

import { buildDecisionEvent, newDecisionId, reasonOf, verdictOf, type DecisionRecord } from './decision-event.js';
import { capturedHeaderValue, isCapturedHeader, queryKeys, rawPathOf, type CaptureFacts } from './capture.js';
import type { DecisionEventV1 } from './types.js';

/** Thrown (preallocated) at a field of an unexpected type: the whole event is then written by JSON.stringify. */
const unexpected = new Error('decision event field of an unexpected type');

/**
 * A JSON string literal. Only a string with a character JSON.stringify escapes (quote, backslash, a control
 * character, a surrogate: lone ones are escaped) goes to JSON.stringify; the usual one is quoted as it is.
 * A char-code loop, not a regex test: about 30 strings per line made the regex call most of the line's cost.
 */
function str(v: unknown): string {
  if (typeof v !== 'string') throw unexpected;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(v);
  }
  return `"${v}"`;
}
const strOrNull = (v: unknown): string => (v === null ? 'null' : str(v));
function num(v: unknown): string {
  if (typeof v !== 'number') throw unexpected;
  return Number.isFinite(v) ? `${v}` : 'null';
}
const numOrNull = (v: unknown): string => (v === null ? 'null' : num(v));
function bool(v: unknown): string {
  if (typeof v !== 'boolean') throw unexpected;
  return v ? 'true' : 'false';
}
function objectOrNull<T>(v: T | null, write: (o: T) => string): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') throw unexpected;
  return write(v);
}

type PolicyRef = NonNullable<DecisionEventV1['policy']>;
const policy = (p: PolicyRef): string => `{"kind":${str(p.kind)},"namespace":${str(p.namespace)},"name":${str(p.name)}}`;
const policyOrNull = (p: PolicyRef | null): string => objectOrNull(p, policy);

function fixedShape(e: DecisionEventV1): string {
  const peer = e.peer;
  const r = e.request;
  let line = `{"v":${num(e.v)},"decision_id":${str(e.decision_id)},"time":${str(e.time)},"mode":${str(e.mode)}`
    + `,"verdict":${str(e.verdict)},"would_deny":${bool(e.would_deny)},"dialect":${strOrNull(e.dialect)},"tier":${strOrNull(e.tier)}`
    + `,"policy":${policyOrNull(e.policy)},"rule":${strOrNull(e.rule)},"authorization":${strOrNull(e.authorization)}`
    + `,"reason":${str(e.reason)}`
    + `,"audit":${objectOrNull(e.audit, (a) => `{"policy":${objectOrNull(a.policy, policy)},"rule":${strOrNull(a.rule)}}`)}`
    + `,"shadow":${objectOrNull(e.shadow, (s) => `{"verdict":${str(s.verdict)},"action":${str(s.action)},"policy":${policyOrNull(s.policy)},"rule":${strOrNull(s.rule)}}`)}`
    + `,"peer":{"spiffe_id":${strOrNull(peer.spiffe_id)},"ip":${str(peer.ip)}${peer.remote_ip === undefined ? '' : `,"remote_ip":${str(peer.remote_ip)}`}}`
    + `,"request":{"protocol":${str(r.protocol)},"method":${str(r.method)},"authority":${str(r.authority)},"path":${str(r.path)},"listener":${str(r.listener)},"port":${num(r.port)}${captured(r)}}`
    + `,"jwt":${objectOrNull(e.jwt, (j) => `{"iss":${str(j.iss)},"sub":${str(j.sub)}${j.claims === undefined ? '' : `,"claims":${anyJson(j.claims)}`}}`)}`
    + `,"status":${num(e.status)},"grpc_status":${numOrNull(e.grpc_status)},"policy_revision":${str(e.policy_revision)},"latency_us":${num(e.latency_us)}`;
  const u = e.upstream;
  if (u !== undefined) {
    if (u === null || typeof u !== 'object') throw unexpected;
    line += `,"upstream":{"outcome":${str(u.outcome)},"status":${numOrNull(u.status)},"duration_us":${num(u.duration_us)}`;
    if (u.bytes_sent !== undefined) line += `,"bytes_sent":${num(u.bytes_sent)}`;
    if (u.bytes_received !== undefined) line += `,"bytes_received":${num(u.bytes_received)}`;
    line += '}';
  }
  if (e.capture !== undefined) line += `,"capture":${str(e.capture)}`;
  return `${line}}`;
}

/** Headers and JWT claims have no fixed shape: written by JSON.stringify (an object is required). */
function anyJson(v: unknown): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw unexpected;
  return JSON.stringify(v);
}

/** The replay attributes of `request` (observe/capture.ts), in the order the event builder adds them. */
function captured(r: DecisionEventV1['request']): string {
  let out = '';
  if (r.raw_path !== undefined) out += `,"raw_path":${str(r.raw_path)}`;
  if (r.query_keys !== undefined) {
    if (!Array.isArray(r.query_keys)) throw unexpected;
    out += `,"query_keys":[${r.query_keys.map(str).join(',')}]`;
  }
  if (r.headers !== undefined) out += `,"headers":${anyJson(r.headers)}`;
  if (r.destination_ip !== undefined) out += `,"destination_ip":${str(r.destination_ip)}`;
  if (r.sni !== undefined) out += `,"sni":${str(r.sni)}`;
  return out;
}

/**
 * The event as one JSON line (no newline), identical to JSON.stringify(event) for events built by
 * buildDecisionEvent (whose field order this follows; the test compares the two on many events). A field
 * of another type than the schema's falls back to JSON.stringify, so the output is never wrong.
 */
export function decisionEventJson(event: DecisionEventV1): string {
  try {
    return fixedShape(event);
  } catch {
    return JSON.stringify(event);
  }
}

let isoMs = Number.NaN;
let isoText = '';
/** new Date(ms).toISOString(), remembered for the last millisecond (several decisions share one under load). */
function isoTime(ms: number): string {
  if (ms !== isoMs) { isoText = new Date(ms).toISOString(); isoMs = ms; }
  return isoText;
}

const policyRefOrNull = (p: PolicyRef | null | undefined): string => (p ? policy(p) : 'null');

/** The captured request headers as an object literal, in the order capturedHeaders() builds them. */
function capturedHeadersJson(original: Record<string, string | string[]>, c: CaptureFacts): string {
  let out = '{';
  for (const name in original) {
    // An own `__proto__` key cannot become an own property of capturedHeaders()' object: never written.
    if (!isCapturedHeader(name) || name === '__proto__') continue;
    const value = capturedHeaderValue(name, original[name] as string | string[], c.redaction);
    if (out.length > 1) out += ',';
    out += `${str(name)}:${typeof value === 'string' ? str(value) : `[${value.map(str).join(',')}]`}`;
  }
  return `${out}}`;
}

/** The `request` object's replay attributes for record `c`, as buildDecisionEvent adds them. */
function capturedRequestJson(c: CaptureFacts): string {
  const ctx = c.context;
  let out = '';
  if (ctx.protocol !== 'tcp') {
    const target = c.target ?? ctx.path;
    const rawPath = rawPathOf(target);
    if (rawPath !== ctx.path) out += `,"raw_path":${str(rawPath)}`;
    out += `,"query_keys":[${queryKeys(target).map(str).join(',')}]`;
    out += `,"headers":${c.headers ? capturedHeadersJson(c.headers, c) : '{}'}`;
  }
  if (ctx.destinationIp !== undefined) out += `,"destination_ip":${str(ctx.destinationIp)}`;
  if (ctx.sni !== undefined) out += `,"sni":${str(ctx.sni)}`;
  return out;
}

function recordShape(r: DecisionRecord, id: string, time: number): string {
  const d = r.decision;
  const c = r.capture;
  const ctx = c?.context;
  const audit = d?.audit;
  const shadow = d?.shadow;
  const peer = r.peer;
  const q = r.request;
  const jwt = r.jwt;
  let line = `{"v":1,"decision_id":${str(id)},"time":${str(isoTime(time))},"mode":${str(r.mode)}`
    + `,"verdict":${str(verdictOf(r))},"would_deny":${bool(r.wouldDeny)},"dialect":${strOrNull(d?.dialect ?? null)},"tier":${strOrNull(d?.tier ?? null)}`
    + `,"policy":${policyRefOrNull(d?.policy)},"rule":${strOrNull(d?.rule ?? null)},"authorization":${strOrNull(d?.authorization ?? null)}`
    + `,"reason":${str(reasonOf(r))}`
    + `,"audit":${audit ? `{"policy":${policyRefOrNull(audit.policy)},"rule":${strOrNull(audit.rule)}}` : 'null'}`
    + `,"shadow":${shadow ? `{"verdict":${str(shadow.verdict)},"action":${str(shadow.action)},"policy":${policyRefOrNull(shadow.policy)},"rule":${strOrNull(shadow.rule)}}` : 'null'}`
    + `,"peer":{"spiffe_id":${strOrNull(peer.spiffeId)},"ip":${str(peer.ip)}${ctx !== undefined && ctx.remoteIp !== ctx.sourceIp ? `,"remote_ip":${str(ctx.remoteIp)}` : ''}}`
    + `,"request":{"protocol":${str(q.protocol)},"method":${str(q.method)},"authority":${str(q.authority)},"path":${str(q.path)},"listener":${str(q.listener)},"port":${num(q.port)}${c ? capturedRequestJson(c) : ''}}`
    + `,"jwt":${jwt ? `{"iss":${str(jwt.iss)},"sub":${str(jwt.sub)}${ctx?.jwt && ctx.jwt.claims !== undefined ? `,"claims":${anyJson(ctx.jwt.claims)}` : ''}}` : 'null'}`
    + `,"status":${num(r.status)},"grpc_status":${numOrNull(r.grpcStatus)},"policy_revision":${str(r.policyRevision)},"latency_us":${num(r.latencyUs)}`;
  const u = r.upstream;
  if (u) {
    line += `,"upstream":{"outcome":${str(u.outcome)},"status":${numOrNull(u.status)},"duration_us":${num(u.durationUs)}`;
    if (u.bytesSent !== undefined) line += `,"bytes_sent":${num(u.bytesSent)}`;
    if (u.bytesReceived !== undefined) line += `,"bytes_received":${num(u.bytesReceived)}`;
    line += '}';
  }
  if (c) line += ',"capture":"replayable"';
  return `${line}}`;
}

/**
 * The line of buildDecisionEvent(r), written straight from the record (no event object in between);
 * identical to JSON.stringify(buildDecisionEvent(r)), which it falls back to at a field of an unexpected
 * type. The decision id and time are fixed in the record first, so both ways tell of the same event.
 */
export function decisionRecordJson(r: DecisionRecord): string {
  const id = (r.decisionId ??= newDecisionId());
  const time = (r.time ??= Date.now());
  try {
    return recordShape(r, id, time);
  } catch {
    return JSON.stringify(buildDecisionEvent(r));
  }
}

// A field added to the schema must be written above too: these fail to compile until it is.
type Written<T, K extends readonly string[]> = Exclude<keyof T, K[number]> extends never ? true : { missing: Exclude<keyof T, K[number]> };
type Event = DecisionEventV1;
const complete: [
  Written<Event, ['v', 'decision_id', 'time', 'mode', 'verdict', 'would_deny', 'dialect', 'tier', 'policy', 'rule', 'authorization', 'reason', 'audit', 'shadow', 'peer', 'request', 'jwt', 'status', 'grpc_status', 'policy_revision', 'latency_us', 'upstream', 'capture']>,
  Written<PolicyRef, ['kind', 'namespace', 'name']>,
  Written<NonNullable<Event['audit']>, ['policy', 'rule']>,
  Written<NonNullable<Event['shadow']>, ['verdict', 'action', 'policy', 'rule']>,
  Written<Event['peer'], ['spiffe_id', 'ip', 'remote_ip']>,
  Written<Event['request'], ['protocol', 'method', 'authority', 'path', 'listener', 'port', 'raw_path', 'query_keys', 'headers', 'destination_ip', 'sni']>,
  Written<NonNullable<Event['jwt']>, ['iss', 'sub', 'claims']>,
  Written<NonNullable<Event['upstream']>, ['outcome', 'status', 'duration_us', 'bytes_sent', 'bytes_received']>,
] = [true, true, true, true, true, true, true, true];
void complete;
