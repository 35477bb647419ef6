// Owns what a decision event records of a request so `portcullis replay` can decide it again (docs/replay.md):
// the attributes policies test, credential header values replaced by a presence marker, never a token.

import type { RequestContext } from '../policy/context-types.js';
import type { PolicySnapshot } from '../policy/snapshot.js';

/** `minimal`: the decision only (v1 as first shipped). `replayable`: also what re-deciding needs. */
export type CaptureMode = 'minimal' | 'replayable';

export interface CaptureSettings {
  mode: CaptureMode;
  /** Lower-case header names whose values are never logged (the operator's deny-list). */
  redactHeaders: readonly string[];
}

export const defaultCaptureSettings: CaptureSettings = { mode: 'replayable', redactHeaders: [] };

/** The presence marker that stands for a credential's value. */
export const REDACTED = '[redacted]';

/** Credential headers in every event, whatever the policies say. */
export const credentialHeaders: readonly string[] = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Standard HTTP authentication schemes (IANA registry): kept in front of the marker because they are not
 * secret and a RequestAuthentication prefix (`Bearer `) must still find "a token" in a replayed request.
 */
const authSchemes = ['Basic', 'Bearer', 'Digest', 'DPoP', 'HOBA', 'Mutual', 'Negotiate', 'NTLM', 'OAuth', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'vapid', 'AWS4-HMAC-SHA256'];

/** How one snapshot's credentials are redacted: computed once per snapshot and settings. */
export interface Redaction {
  /** Header name -> how its value is replaced. */
  readonly headers: ReadonlyMap<string, 'credential' | 'cookie' | 'deny'>;
  /** Prefixes kept in front of the marker (lower-cased for matching, original text kept). */
  readonly prefixes: readonly { lower: string; text: string }[];
}

const redactions = new WeakMap<CaptureSettings, WeakMap<PolicySnapshot, Redaction>>();

/** The snapshot's token headers (RequestAuthentication fromHeaders) join the fixed credential headers. */
export function redactionFor(snapshot: PolicySnapshot, settings: CaptureSettings): Redaction {
  let bySnapshot = redactions.get(settings);
  if (!bySnapshot) { bySnapshot = new WeakMap(); redactions.set(settings, bySnapshot); }
  let r = bySnapshot.get(snapshot);
  if (r) return r;
  const headers = new Map<string, 'credential' | 'cookie' | 'deny'>();
  for (const name of credentialHeaders) headers.set(name, name === 'cookie' ? 'cookie' : 'credential');
  const prefixes = new Map<string, string>();
  for (const scheme of authSchemes) prefixes.set(`${scheme.toLowerCase()} `, `${scheme} `);
  for (const provider of snapshot.jwtProviders) {
    for (const h of provider.fromHeaders) {
      const name = h.name.toLowerCase();
      if (name !== 'cookie') headers.set(name, 'credential');
      if (h.prefix !== '') prefixes.set(h.prefix.toLowerCase(), h.prefix);
    }
  }
  for (const name of settings.redactHeaders) headers.set(name.toLowerCase(), 'deny');
  r = { headers, prefixes: [...prefixes].map(([lower, text]) => ({ lower, text })) };
  bySnapshot.set(snapshot, r);
  return r;
}

function redactCredential(value: string, redaction: Redaction): string {
  const lower = value.toLowerCase();
  for (const p of redaction.prefixes) if (lower.startsWith(p.lower)) return p.text + REDACTED;
  return REDACTED;
}

/** Cookie names stay (a RequestAuthentication may read a token from one); every value becomes the marker. */
function redactCookie(value: string): string {
  const out: string[] = [];
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.push(`${part.slice(0, eq).trim()}=${REDACTED}`);
  }
  return out.length > 0 ? out.join('; ') : REDACTED;
}

function redactValue(value: string, how: 'credential' | 'cookie' | 'deny', redaction: Redaction): string {
  return how === 'deny' ? REDACTED : how === 'cookie' ? redactCookie(value) : redactCredential(value, redaction);
}

/** Whether a received header is captured: pseudo-headers and `host` are left out (`authority` says it). */
export function isCapturedHeader(name: string): boolean {
  return name.charCodeAt(0) !== 58 /* : */ && name !== 'host';
}

/** A captured header's value as logged: credentials redacted, anything else as received. */
export function capturedHeaderValue(name: string, value: string | string[], redaction: Redaction): string | string[] {
  const how = redaction.headers.get(name);
  if (how === undefined) return value;
  return typeof value === 'string' ? redactValue(value, how, redaction) : value.map((v) => redactValue(v, how, redaction));
}

/** The request headers as received (pseudo-headers and `host` left out: `authority` says it), credentials redacted. */
export function capturedHeaders(original: Record<string, string | string[]>, redaction: Redaction): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in original) {
    if (isCapturedHeader(name)) out[name] = capturedHeaderValue(name, original[name] as string | string[], redaction);
  }
  return out;
}

/**
 * The query's parameter names of a raw target (raw, repeated names kept): values may carry tokens and are
 * never logged. Read from the target as sent, because a query-borne token is cut from the context before policy.
 */
export function queryKeys(target: string): string[] {
  const q = target.indexOf('?');
  if (q === -1) return [];
  const hash = target.indexOf('#', q);
  const query = hash === -1 ? target.slice(q + 1) : target.slice(q + 1, hash);
  if (query === '') return [];
  const keys: string[] = [];
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    keys.push(eq === -1 ? pair : pair.slice(0, eq));
  }
  return keys;
}

/** The path of a raw request target (query and fragment cut), to keep beside the normalized one when they differ. */
export function rawPathOf(target: string): string {
  let end = target.length;
  const q = target.indexOf('?');
  if (q !== -1) end = q;
  const h = target.indexOf('#');
  if (h !== -1 && h < end) end = h;
  return target.slice(0, end);
}

/** What the data plane hands the event builder for a replayable event: facts known after the context was built. */
export interface CaptureFacts {
  context: RequestContext;
  /** The raw request target (HTTP only). */
  target?: string;
  /** Headers as received, lower-cased (HTTP only). */
  headers?: Record<string, string | string[]>;
  redaction: Redaction;
}
