// Owns request/response header hygiene: singleton and count checks, hop-by-hop and framing removal,
// spoofable identity/override headers stripped, then Portcullis' own set added (security.md PC-7..PC-12, PC-21, PC-22).

import type { Refusal } from './respond.js';

/** Headers that must appear at most once (PC-8); a repeat is a 400, never "first wins". */
const singletons = new Set(['host', 'authorization', 'content-length', 'content-type', ':authority', ':path', ':method', ':scheme']);

/** Connection-specific and framing headers: never copied; Portcullis re-frames the body (PC-12). */
const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te', 'trailer',
  'content-length', 'host', 'expect', 'proxy-authorization', 'proxy-authenticate',
]);

/** Headers only Portcullis may set (PC-21), path overrides (PC-22), method overrides (PC-7). */
const spoofable = new Set([
  'x-forwarded-client-cert', 'x-spiffe-id', 'l5d-client-id', 'l5d-remote-ip', 'l5d-server-id', 'forwarded', 'x-real-ip',
  'x-original-url', 'x-rewrite-url', 'x-original-uri',
  'x-http-method-override', 'x-http-method', 'x-method-override',
]);
const spoofablePrefixes = ['x-forwarded-', 'x-portcullis-', 'x-envoy-'];

export interface ScannedRequestHeaders {
  /** Lower-cased, cleaned headers as they will be forwarded (before Portcullis' own are added). */
  forward: Map<string, string[]>;
  /** What the policy sees: the forwarded set (decide on what you forward), repeated values as arrays. */
  forPolicy: Record<string, string | string[]>;
  /** Original headers lower-cased (JWT extraction reads the token before it is removed). */
  original: Record<string, string | string[]>;
  host: string | undefined;
  contentType: string | undefined;
  expectContinue: boolean;
  /** The Upgrade header value (lower-cased), if any. */
  upgrade: string | undefined;
  /** True when the client sent `te: trailers` (gRPC requires it on h2 upstreams). */
  teTrailers: boolean;
}

export type ScanResult = { ok: true; headers: ScannedRequestHeaders } | { ok: false; refusal: Refusal };

export interface ScanOptions {
  maxHeaderCount: number;
  /** Claim-output header names from RequestAuthentications: client copies are stripped too. */
  ownedNames: ReadonlySet<string>;
}

function isOwned(name: string, owned: ReadonlySet<string>): boolean {
  if (spoofable.has(name) || owned.has(name)) return true;
  for (const p of spoofablePrefixes) if (name.startsWith(p)) return true;
  return false;
}

/** `raw` is Node's flat rawHeaders list: [name, value, name, value, ...], pseudo-headers included for h2. */
export function scanRequestHeaders(raw: readonly string[], options: ScanOptions): ScanResult {
  let count = 0;
  const original: Record<string, string | string[]> = {};
  const seen = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (!name.startsWith(':')) count++;
    const list = seen.get(name);
    if (list) {
      if (singletons.has(name)) return { ok: false, refusal: { kind: 'bad_request', reason: 'duplicate_header' } };
      list.push(value);
    } else {
      seen.set(name, [value]);
    }
  }
  if (count > options.maxHeaderCount) return { ok: false, refusal: { kind: 'headers_too_large', reason: 'too_many_headers' } };
  for (const [name, values] of seen) original[name] = values.length === 1 ? (values[0] as string) : values;

  // Connection may remove end-to-end headers, but it is computed before Portcullis adds its own (PC-10).
  const nominated = new Set<string>();
  for (const v of seen.get('connection') ?? []) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) nominated.add(t);
    }
  }
  const forward = new Map<string, string[]>();
  const forPolicy: Record<string, string | string[]> = {};
  for (const [name, values] of seen) {
    if (name.startsWith(':')) continue;
    // Underscore names are dropped (PC-9): WSGI-style upstreams fold them into their hyphenated twins.
    if (name.includes('_')) continue;
    if (hopByHop.has(name) || nominated.has(name) || isOwned(name, options.ownedNames)) continue;
    forward.set(name, values);
    forPolicy[name] = values.length === 1 ? (values[0] as string) : values;
  }
  const te = (seen.get('te') ?? []).join(',').toLowerCase();
  const expect = (seen.get('expect') ?? []).join(',').toLowerCase();
  const upgrade = seen.get('upgrade')?.join(',').toLowerCase();
  return {
    ok: true,
    headers: {
      forward,
      forPolicy,
      original,
      host: seen.get(':authority')?.[0] ?? seen.get('host')?.[0],
      contentType: seen.get('content-type')?.[0],
      expectContinue: expect.includes('100-continue'),
      upgrade,
      teTrailers: te.split(',').some((t) => t.trim() === 'trailers'),
    },
  };
}

/** Envoy's XFCC element for the verified peer (SANITIZE_SET): By=<own id>;Hash=<sha256 hex>;URI=<peer id>. */
export function forwardedClientCert(ownSpiffeId: string, peerCertHash: string, peerSpiffeId: string): string {
  return `By=${ownSpiffeId};Hash=${peerCertHash};URI=${peerSpiffeId}`;
}

/** Response headers that must not cross the proxy (connection-specific; illegal on h2). */
const responseHopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings']);

export function cleanResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const nominated = new Set<string>();
  const conn = headers['connection'];
  for (const v of Array.isArray(conn) ? conn : conn ? [conn] : []) for (const t of v.split(',')) nominated.add(t.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    const lower = name.toLowerCase();
    if (responseHopByHop.has(lower) || nominated.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}
