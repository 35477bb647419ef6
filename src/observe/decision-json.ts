// Owns the decision event's NDJSON line (schema v1, ARCHITECTURE.md): byte for byte the UTF-8 of what
// JSON.stringify(event) writes, encoded from the decision record straight into a byte buffer by code that knows its fixed shape.

import { buildDecisionEvent, newDecisionId, reasonOf, verdictOf, type DecisionRecord } from './decision-event.js';
import { capturedHeaderValue, isCapturedHeader, queryKeys, rawPathOf, type CaptureFacts } from './capture.js';
import type { DecisionEventV1 } from './types.js';

// The line is written into `out` from `at`, never past `end`. The writer is synchronous and not re-entered,
// so its cursor lives here rather than in an object passed to every call. Writing bytes instead of building
// the line as a string spares the ~40 string pieces a line was, their flattened copy and its UTF-8 encoding:
// they were about a third of what the data plane's own code cost per request.
let out: Buffer = Buffer.alloc(0);
let at = 0;
let end = 0;

/** Thrown (preallocated) at a field of an unexpected type: the whole event is then written from JSON.stringify. */
const unexpected = new Error('decision event field of an unexpected type');
/** Thrown (preallocated) when the line does not fit before `end`: the caller gets -1 and nothing is kept. */
const noRoom = new Error('decision line does not fit');

/**
 * Called as `charCodeAt.call(s, i)`: that call site has one target whatever the string. A `s.charCodeAt` load sees
 * every kind of string V8 makes (literal, sequential, sliced, concatenated: a map each), goes megamorphic, and
 * then costs a stub-cache lookup per character (perf: 0.47 µs per request).
 */
const charCodeAt = String.prototype.charCodeAt;

function room(bytes: number): void {
  if (at + bytes > end) throw noRoom;
}

/** Text of the shape itself (names, punctuation, numbers): ASCII that JSON never escapes. */
function raw(s: string): void {
  const n = s.length;
  const o = out;
  const p = at;
  if (p + n > end) throw noRoom;
  // Locals, not the module's cursor, inside the loop: V8 keeps them in registers.
  for (let i = 0; i < n; i++) o[p + i] = charCodeAt.call(s, i);
  at = p + n;
}

/** Any text as UTF-8, whatever it holds (a JSON.stringify result). UTF-8 takes at most 3 bytes per UTF-16 unit. */
function utf8(s: string): void {
  room(s.length * 3);
  at += out.write(s, at, 'utf8');
}

/**
 * A JSON string literal. A string with a character JSON.stringify escapes (quote, backslash, a control
 * character, a lone surrogate) or any non-ASCII character is written from JSON.stringify as UTF-8; the
 * usual one is copied byte by byte as it is checked.
 */
function str(v: unknown): void {
  if (typeof v !== 'string') throw unexpected;
  const n = v.length;
  const o = out;
  const p = at;
  if (p + n + 2 > end) throw noRoom;
  o[p] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = charCodeAt.call(v, i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7f) {
      utf8(JSON.stringify(v));
      return;
    }
    o[p + 1 + i] = c;
  }
  o[p + 1 + n] = 0x22;
  at = p + n + 2;
}
function strOrNull(v: unknown): void {
  if (v === null) raw('null');
  else str(v);
}
function num(v: unknown): void {
  if (typeof v !== 'number') throw unexpected;
  // The usual number (a status, a port, microseconds) is a small non-negative integer: its digits are written
  // straight, without making the string that `${v}` would (and JSON.stringify writes the same digits).
  if (v >= 0 && v <= 0x7fffffff && Number.isInteger(v)) { digits(v); return; }
  raw(Number.isFinite(v) ? `${v}` : 'null');
}
/** A non-negative integer below 2^31 in decimal. */
function digits(v: number): void {
  let n = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) n++;
  room(n);
  const o = out;
  let x = v;
  for (let i = at + n - 1; i >= at; i--) {
    o[i] = 0x30 + (x % 10);
    x = Math.floor(x / 10);
  }
  at += n;
}
function numOrNull(v: unknown): void {
  if (v === null) raw('null');
  else num(v);
}
function bool(v: unknown): void {
  if (typeof v !== 'boolean') throw unexpected;
  raw(v ? 'true' : 'false');
}
function object(v: unknown): void {
  if (v === null || typeof v !== 'object') throw unexpected;
}
/** Headers and JWT claims have no fixed shape: written by JSON.stringify (an object is required). */
function anyJson(v: unknown): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw unexpected;
  utf8(JSON.stringify(v));
}
function strings(list: unknown): void {
  if (!Array.isArray(list)) throw unexpected;
  raw('[');
  for (let i = 0; i < list.length; i++) {
    if (i > 0) raw(',');
    str(list[i]);
  }
  raw(']');
}

/**
 * A run of the record's line written from values that usually repeat from one request to the next (the rule that
 * decided, the caller, the authority). The bytes are kept beside the primitive values they were written from and
 * copied while those values are the same (===): the same strings and numbers always make the same bytes. A few
 * variants are kept, so callers or rules taking turns do not rewrite each other's.
 */
class RepeatingRun {
  /** The values of the line being written, filled in by the caller before copied(). Primitives only. */
  readonly values: unknown[];
  private readonly keptValues: unknown[][] = [];
  private readonly keptBytes: Uint8Array[] = [];
  private next = 0;
  private start = 0;
  constructor(private readonly size: number, private readonly variants = 4) {
    this.values = new Array<unknown>(size).fill(undefined);
  }

  /** Copies the kept bytes when `values` match a kept variant; else notes where the run starts and returns false. */
  copied(): boolean {
    const values = this.values;
    for (let k = 0; k < this.keptValues.length; k++) {
      const kept = this.keptValues[k] as unknown[];
      let i = 0;
      while (i < this.size && kept[i] === values[i]) i++;
      if (i < this.size) continue;
      const bytes = this.keptBytes[k] as Uint8Array;
      room(bytes.length);
      out.set(bytes, at);
      at += bytes.length;
      return true;
    }
    this.start = at;
    return false;
  }

  /** Keeps what was written since copied() returned false, with the values it was written from. */
  keep(): void {
    const k = this.next;
    this.next = (k + 1) % this.variants;
    this.keptValues[k] = this.values.slice();
    this.keptBytes[k] = Uint8Array.prototype.slice.call(out, this.start, at);
  }
}

type PolicyRef = NonNullable<DecisionEventV1['policy']>;
function policyOrNull(p: PolicyRef | null): void {
  if (p === null) { raw('null'); return; }
  object(p);
  raw('{"kind":'); str(p.kind);
  raw(',"namespace":'); str(p.namespace);
  raw(',"name":'); str(p.name);
  raw('}');
}

/**
 * Writes `value`'s line with `shape`, then a newline, into `buffer` from `offset`. Returns the offset after the
 * newline, or -1 when the line does not fit (the bytes from `offset` on are then meaningless). A field of another
 * type than the schema's gets the line of JSON.stringify(fallback(value)), so the output is never wrong.
 */
function writeLine<T>(buffer: Buffer, offset: number, shape: (v: T) => void, value: T, fallback: (v: T) => unknown): number {
  out = buffer; at = offset; end = buffer.length;
  try {
    try {
      shape(value);
    } catch (err) {
      if (err === noRoom) throw err;
      at = offset;
      utf8(JSON.stringify(fallback(value)));
    }
    room(1);
    out[at++] = 0x0a;
    return at;
  } catch (err) {
    if (err !== noRoom) throw err;
    return -1;
  } finally {
    out = empty;
  }
}
const empty = Buffer.alloc(0);

let isoSecond = Number.NaN;
/** toISOString() of the second being written, without its milliseconds and `Z` (e.g. `2026-12-07T03:29:22.`). */
let isoPrefix = '';
/**
 * The record's time as new Date(ms).toISOString() writes it, in quotes: the date and time of day are formatted
 * once per second, the milliseconds written as three digits (a Date and its formatting per line were a
 * measurable part of the line).
 */
function isoTime(ms: number): void {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    // toISOString() throws on a time outside the Date range, as the event builder's own call does.
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    isoSecond = second;
  }
  const milli = ms - second * 1000;
  if (!Number.isInteger(milli)) { str(new Date(ms).toISOString()); return; }
  raw('"');
  raw(isoPrefix);
  room(5);
  out[at++] = 0x30 + Math.floor(milli / 100);
  out[at++] = 0x30 + (Math.floor(milli / 10) % 10);
  out[at++] = 0x30 + (milli % 10);
  out[at++] = 0x5a; // Z
  out[at++] = 0x22;
}

/** The captured request headers as an object literal, in the order capturedHeaders() builds them. */
function capturedHeaders(original: Record<string, string | string[]>, c: CaptureFacts): void {
  raw('{');
  let first = true;
  for (const name in original) {
    // An own `__proto__` key cannot become an own property of capturedHeaders()' object: never written.
    if (!isCapturedHeader(name) || name === '__proto__') continue;
    const value = capturedHeaderValue(name, original[name] as string | string[], c.redaction);
    if (!first) raw(',');
    first = false;
    str(name);
    raw(':');
    if (typeof value === 'string') str(value);
    else strings(value);
  }
  raw('}');
}

/** The `request` object's replay attributes for record `c`, as buildDecisionEvent adds them. */
function capturedRequest(c: CaptureFacts): void {
  const ctx = c.context;
  if (ctx.protocol !== 'tcp') {
    const target = c.target ?? ctx.path;
    const rawPath = rawPathOf(target);
    if (rawPath !== ctx.path) { raw(',"raw_path":'); str(rawPath); }
    raw(',"query_keys":'); strings(queryKeys(target));
    raw(',"headers":');
    if (c.headers) capturedHeaders(c.headers, c);
    else raw('{}');
  }
  if (ctx.destinationIp !== undefined) { raw(',"destination_ip":'); str(ctx.destinationIp); }
  if (ctx.sni !== undefined) { raw(',"sni":'); str(ctx.sni); }
}

/** What decided (mode to shadow), the caller with the request's protocol, method and authority, the outcome (jwt to latency_us), the upstream's outcome and status. */
const decidedRun = new RepeatingRun(11);
const callerRun = new RepeatingRun(6);
const outcomeRun = new RepeatingRun(5);
const upstreamRun = new RepeatingRun(2);

function recordShape(r: DecisionRecord): void {
  const d = r.decision;
  const c = r.capture;
  const ctx = c?.context;
  const audit = d?.audit;
  const shadow = d?.shadow;
  const peer = r.peer;
  const q = r.request;
  const jwt = r.jwt;
  raw('{"v":1,"decision_id":'); str(r.decisionId);
  raw(',"time":'); isoTime(r.time as number);
  // Audit and shadow results are rare: a line with one is written in full, not kept.
  const decided = audit || shadow ? null : decidedRun;
  const policy = d?.policy ?? null;
  if (decided) {
    const v = decided.values;
    v[0] = r.mode; v[1] = verdictOf(r); v[2] = r.wouldDeny; v[3] = d?.dialect ?? null; v[4] = d?.tier ?? null;
    v[5] = policy?.kind; v[6] = policy?.namespace; v[7] = policy?.name; v[8] = d?.rule ?? null;
    v[9] = d?.authorization ?? null; v[10] = reasonOf(r);
  }
  if (!decided?.copied()) {
    raw(',"mode":'); str(r.mode);
    raw(',"verdict":'); str(verdictOf(r));
    raw(',"would_deny":'); bool(r.wouldDeny);
    raw(',"dialect":'); strOrNull(d?.dialect ?? null);
    raw(',"tier":'); strOrNull(d?.tier ?? null);
    raw(',"policy":'); policyOrNull(policy);
    raw(',"rule":'); strOrNull(d?.rule ?? null);
    raw(',"authorization":'); strOrNull(d?.authorization ?? null);
    raw(',"reason":'); str(reasonOf(r));
    raw(',"audit":');
    if (audit) {
      raw('{"policy":'); policyOrNull(audit.policy ?? null);
      raw(',"rule":'); strOrNull(audit.rule);
      raw('}');
    } else raw('null');
    raw(',"shadow":');
    if (shadow) {
      raw('{"verdict":'); str(shadow.verdict);
      raw(',"action":'); str(shadow.action);
      raw(',"policy":'); policyOrNull(shadow.policy ?? null);
      raw(',"rule":'); strOrNull(shadow.rule);
      raw('}');
    } else raw('null');
    decided?.keep();
  }
  const remoteIp = ctx !== undefined && ctx.remoteIp !== ctx.sourceIp ? ctx.remoteIp : undefined;
  const v = callerRun.values;
  v[0] = peer.spiffeId; v[1] = peer.ip; v[2] = remoteIp; v[3] = q.protocol; v[4] = q.method; v[5] = q.authority;
  if (!callerRun.copied()) {
    raw(',"peer":{"spiffe_id":'); strOrNull(peer.spiffeId);
    raw(',"ip":'); str(peer.ip);
    if (remoteIp !== undefined) { raw(',"remote_ip":'); str(remoteIp); }
    raw('},"request":{"protocol":'); str(q.protocol);
    raw(',"method":'); str(q.method);
    raw(',"authority":'); str(q.authority);
    callerRun.keep();
  }
  raw(',"path":'); str(q.path);
  raw(',"listener":'); str(q.listener);
  raw(',"port":'); num(q.port);
  if (c) capturedRequest(c);
  // JWT claims have no fixed shape: a line with them is written in full from here on.
  const claims = jwt && ctx?.jwt ? ctx.jwt.claims : undefined;
  const outcome = claims === undefined ? outcomeRun : null;
  if (outcome) {
    const w = outcome.values;
    // A record without a JWT has neither an iss nor a sub; one whose iss is not a string is never kept.
    w[0] = jwt?.iss; w[1] = jwt?.sub; w[2] = r.status; w[3] = r.grpcStatus; w[4] = r.policyRevision;
  }
  if (!outcome?.copied()) {
    raw('},"jwt":');
    if (jwt) {
      raw('{"iss":'); str(jwt.iss);
      raw(',"sub":'); str(jwt.sub);
      if (claims !== undefined) { raw(',"claims":'); anyJson(claims); }
      raw('}');
    } else raw('null');
    raw(',"status":'); num(r.status);
    raw(',"grpc_status":'); numOrNull(r.grpcStatus);
    raw(',"policy_revision":'); str(r.policyRevision);
    raw(',"latency_us":');
    outcome?.keep();
  }
  num(r.latencyUs);
  const u = r.upstream;
  if (u) {
    const x = upstreamRun.values;
    x[0] = u.outcome; x[1] = u.status;
    if (!upstreamRun.copied()) {
      raw(',"upstream":{"outcome":'); str(u.outcome);
      raw(',"status":'); numOrNull(u.status);
      raw(',"duration_us":');
      upstreamRun.keep();
    }
    num(u.durationUs);
    if (u.bytesSent !== undefined) { raw(',"bytes_sent":'); num(u.bytesSent); }
    if (u.bytesReceived !== undefined) { raw(',"bytes_received":'); num(u.bytesReceived); }
    raw('}');
  }
  if (c) raw(',"capture":"replayable"');
  raw('}');
}

/**
 * The line of buildDecisionEvent(r) into `buffer` from `offset`, written straight from the record: the offset
 * after its newline, or -1 if it does not fit. The decision id and time are fixed in the record first, so a
 * fallback to JSON.stringify(buildDecisionEvent(r)) and any later event tell of the same decision.
 */
export function writeRecordLine(buffer: Buffer, offset: number, r: DecisionRecord): number {
  r.decisionId ??= newDecisionId();
  r.time ??= Date.now();
  return writeLine(buffer, offset, recordShape, r, buildDecisionEvent);
}

// ---- The same line as a string (a `concurrency` worker sends its lines to the primary as text).

let scratch = Buffer.allocUnsafe(16 * 1024);
function asString(write: (buffer: Buffer) => number): string {
  for (;;) {
    const n = write(scratch);
    // The newline is the writer's; the string form is the line alone.
    if (n !== -1) return scratch.toString('utf8', 0, n - 1);
    scratch = Buffer.allocUnsafe(scratch.length * 2);
  }
}

/** The line of buildDecisionEvent(r) (no newline), identical to JSON.stringify(buildDecisionEvent(r)). */
export function decisionRecordJson(r: DecisionRecord): string {
  return asString((b) => writeRecordLine(b, 0, r));
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
