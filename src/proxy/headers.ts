// Owns request/response header hygiene: singleton and count checks, hop-by-hop and framing removal,
// spoofable identity/override headers stripped, then Portcullis' own set added (security.md PC-7..PC-12, PC-21, PC-22).

import { headerNameToString } from './undici-parts.js';
import type { JwtHeaderEdits } from '../jwt/types.js';
import type { Refusal } from './respond.js';

/** Headers that must appear at most once (PC-8); a repeat is a 400, never "first wins". */
const singletons = new Set(['host', 'authorization', 'content-length', 'content-type', ':authority', ':path', ':method', ':scheme']);

/**
 * THE hop-by-hop set: connection-specific headers (RFC 9110 §7.6.1; illegal on HTTP/2, RFC 9113 §8.2.2), plus
 * `host`, which every hop sets itself. Never copied in either direction, nor rendered on an h2 stream.
 */
export const connectionHeaders: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te', 'trailer',
  'host', 'proxy-authorization', 'proxy-authenticate',
]);

/** Connection-specific and framing headers: never copied; Portcullis re-frames the body (PC-12). */
const hopByHop = new Set([...connectionHeaders, 'content-length', 'expect']);

/** Headers only Portcullis may set (PC-21), path overrides (PC-22), method overrides (PC-7). */
const spoofable = new Set([
  'x-forwarded-client-cert', 'x-spiffe-id', 'l5d-client-id', 'l5d-remote-ip', 'l5d-server-id', 'forwarded', 'x-real-ip',
  'x-original-url', 'x-rewrite-url', 'x-original-uri',
  'x-http-method-override', 'x-http-method', 'x-method-override',
]);
const spoofablePrefixes = ['x-forwarded-', 'x-portcullis-', 'x-envoy-'];

export interface ScannedRequestHeaders {
  /**
   * Lower-cased, cleaned headers as they will be forwarded (before Portcullis' own are added), repeated values as
   * arrays. What the policy sees (decide on what you forward); the upstream request starts as its copy.
   */
  forPolicy: Record<string, string | string[]>;
  /** Original headers lower-cased (JWT extraction reads the token before it is removed). */
  original: Record<string, string | string[]>;
  /** Every header as received, lower-cased and grouped (re-cleaned with the JWT edits after authentication). */
  seen: ReadonlyMap<string, readonly string[]>;
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

export interface CleanHeadersOptions {
  /** Claim-output header names from RequestAuthentications: client copies are stripped too. */
  ownedNames: ReadonlySet<string>;
  /** JWT edits of a verified request (forward=false removal, claim outputs): applied last. */
  jwtEdits?: JwtHeaderEdits | undefined;
}

export type CleanResult =
  | { ok: true; forPolicy: Record<string, string | string[]> }
  | { ok: false; refusal: Extract<Refusal, { kind: 'bad_request' }> };

/**
 * THE header-cleaning step between the wire and policy, shared by the data plane and `portcullis check`
 * so both judge the same header set (pure: no I/O). `seen` maps lower-cased names to their values in
 * arrival order (pseudo-headers are skipped). Refuses repeated singletons (PC-8) and `_` names (PC-9),
 * removes hop-by-hop and Connection-nominated headers (PC-10, PC-12) and identity/override headers
 * only Portcullis may set (PC-21, PC-22, PC-7), then applies the JWT edits.
 */
export function cleanRequestHeaders(seen: ReadonlyMap<string, readonly string[]>, options: CleanHeadersOptions): CleanResult {
  for (const [name, values] of seen) {
    if (values.length > 1 && singletons.has(name)) return { ok: false, refusal: { kind: 'bad_request', reason: 'duplicate_header' } };
    // Refused, not dropped (PC-9): WSGI-style upstreams fold `_` into `-`, and a silently dropped header
    // would make the data plane judge a different request than `portcullis check` (which refuses it).
    if (!name.startsWith(':') && name.includes('_')) return { ok: false, refusal: { kind: 'bad_request', reason: 'bad_header' } };
  }
  // Connection may remove end-to-end headers, but it is computed before Portcullis adds its own (PC-10).
  const nominated = connectionNominated(seen.get('connection'));
  const forward = new Map<string, string[]>();
  for (const [name, values] of seen) {
    if (name.startsWith(':')) continue;
    if (hopByHop.has(name) || nominated.has(name) || isOwned(name, options.ownedNames)) continue;
    forward.set(name, [...values]);
  }
  const edits = options.jwtEdits;
  if (edits) {
    for (const name of edits.remove) forward.delete(name.toLowerCase());
    for (const [name, value] of Object.entries(edits.set)) forward.set(name.toLowerCase(), [value]);
  }
  const forPolicy: Record<string, string | string[]> = {};
  for (const [name, values] of forward) forPolicy[name] = values.length === 1 ? (values[0] as string) : values;
  return { ok: true, forPolicy };
}

const nothingNominated: ReadonlySet<string> = new Set();
const keepAliveNominated: ReadonlySet<string> = new Set(['keep-alive']);
const closeNominated: ReadonlySet<string> = new Set(['close']);

/**
 * The header names a `Connection` header nominates as hop-by-hop for this message (RFC 9110 §7.6.1). The usual
 * single `keep-alive` or `close` (most requests and responses carry one) gets a shared set, not one made per message.
 */
function connectionNominated(values: readonly string[] | undefined): ReadonlySet<string> {
  if (values === undefined || values.length === 0) return nothingNominated;
  if (values.length === 1) {
    const v = values[0] as string;
    if (v === 'keep-alive' || v === 'Keep-Alive') return keepAliveNominated;
    if (v === 'close' || v === 'Close') return closeNominated;
  }
  const nominated = new Set<string>();
  for (const v of values) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) nominated.add(t);
    }
  }
  return nominated;
}

/**
 * The request as a plain hop forwards it (the outbound listener: the local app's own request, judged by the
 * destination's sidecar, not here): the same hop-by-hop, framing and Connection-nominated removal as
 * cleanRequestHeaders, nothing refused or stripped as spoofed. `raw` as scanRequestHeaders takes it;
 * `authority` is `:authority`, else `host`.
 */
export function hopRequestHeaders(raw: readonly string[]): { headers: Record<string, string | string[]>; authority: string | undefined } {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i] as string, raw[i + 1] as string]);
  const seen = groupHeaders(pairs);
  const nominated = connectionNominated(seen.get('connection'));
  const headers: Record<string, string | string[]> = {};
  for (const [name, values] of seen) {
    if (name.startsWith(':') || hopByHop.has(name) || nominated.has(name) || name === '__proto__') continue;
    headers[name] = values.length === 1 ? (values[0] as string) : values;
  }
  return { headers, authority: seen.get(':authority')?.[0] ?? seen.get('host')?.[0] };
}

/** Lower-cases names and groups repeated headers, in arrival order (input of cleanRequestHeaders). */
export function groupHeaders(pairs: Iterable<readonly [string, string]>): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  for (const [rawName, value] of pairs) {
    const name = rawName.toLowerCase();
    const list = seen.get(name);
    if (list) list.push(value);
    else seen.set(name, [value]);
  }
  return seen;
}

/**
 * `raw` is Node's flat rawHeaders list: [name, value, name, value, ...], pseudo-headers included for h2.
 * One pass groups, counts and cleans: the result is what groupHeaders() then cleanRequestHeaders() make of
 * the same list (same refusals in the same precedence, same views in arrival order), without the
 * intermediate lists. Repeated values share one array across the views (nothing mutates them).
 */
export function scanRequestHeaders(raw: readonly string[], options: ScanOptions): ScanResult {
  let count = 0;
  let duplicate = false;
  let underscore = false;
  const seen = new Map<string, string[]>();
  const original: Record<string, string | string[]> = {};
  // Written as the names come: a `_` name (which could be `__proto__`) refuses the request before it is used.
  let forPolicy: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const pseudo = name.charCodeAt(0) === 58; /* : */
    if (!pseudo) count++;
    const list = seen.get(name);
    if (list !== undefined) {
      list.push(value);
      if (list.length === 2) {
        original[name] = list;
        if (singletons.has(name)) duplicate = true;
        if (Object.hasOwn(forPolicy, name)) forPolicy[name] = list;
      }
      continue;
    }
    seen.set(name, [value]);
    original[name] = value;
    if (pseudo) continue;
    // Refused, not dropped (PC-9): see cleanRequestHeaders.
    if (name.includes('_')) underscore = true;
    if (!hopByHop.has(name) && !isOwned(name, options.ownedNames)) forPolicy[name] = value;
  }
  if (duplicate) return { ok: false, refusal: { kind: 'bad_request', reason: 'duplicate_header' } };
  if (count > options.maxHeaderCount) return { ok: false, refusal: { kind: 'headers_too_large', reason: 'too_many_headers' } };
  if (underscore) return { ok: false, refusal: { kind: 'bad_request', reason: 'bad_header' } };
  const connection = seen.get('connection');
  if (connection !== undefined) forPolicy = withoutNominated(forPolicy, connectionNominated(connection));
  const te = seen.get('te');
  const expect = seen.get('expect');
  const upgrade = seen.get('upgrade');
  return {
    ok: true,
    headers: {
      forPolicy,
      original,
      seen,
      host: seen.get(':authority')?.[0] ?? seen.get('host')?.[0],
      contentType: seen.get('content-type')?.[0],
      expectContinue: expect !== undefined && expect.join(',').toLowerCase().includes('100-continue'),
      upgrade: upgrade?.join(',').toLowerCase(),
      teTrailers: te !== undefined && teHasTrailers(te),
    },
  };
}

/**
 * `headers` without the names `Connection` nominated, as a new object (a delete would leave the object in
 * dictionary mode for every later reader); `headers` itself when it has none of them (the usual case: what a
 * `keep-alive` or `close` nominates is hop-by-hop already).
 */
function withoutNominated(headers: Record<string, string | string[]>, nominated: ReadonlySet<string>): Record<string, string | string[]> {
  let found = false;
  for (const name of nominated) if (Object.hasOwn(headers, name)) { found = true; break; }
  if (!found) return headers;
  const kept: Record<string, string | string[]> = {};
  for (const name of Object.keys(headers)) if (!nominated.has(name)) kept[name] = headers[name] as string | string[];
  return kept;
}

/** Whether `TE` names `trailers`; every gRPC call sends exactly `te: trailers`, which is answered without joining and splitting. */
function teHasTrailers(te: readonly string[]): boolean {
  if (te.length === 1 && te[0] === 'trailers') return true;
  return te.join(',').toLowerCase().split(',').some((t) => t.trim() === 'trailers');
}

/** Envoy's XFCC element for the verified peer (SANITIZE_SET): By=<own id>;Hash=<sha256 hex>;URI=<peer id>. */
export function forwardedClientCert(ownSpiffeId: string, peerCertHash: string, peerSpiffeId: string): string {
  return `By=${ownSpiffeId};Hash=${peerCertHash};URI=${peerSpiffeId}`;
}

const xfccByConnection = new WeakMap<object, { by: string; value: string }>();

/**
 * forwardedClientCert() for a connection's verified peer, built once per connection (it depends only on the
 * peer certificate and our own SPIFFE ID, which a rotation may change); null without a TLS peer.
 */
export function connectionForwardedClientCert(conn: { peer: { spiffeId: string } | null; peerCertHash: string | null }, ownSpiffeId: string): string | null {
  if (!conn.peer || !conn.peerCertHash) return null;
  const cached = xfccByConnection.get(conn);
  if (cached !== undefined && cached.by === ownSpiffeId) return cached.value;
  const value = forwardedClientCert(ownSpiffeId, conn.peerCertHash, conn.peer.spiffeId);
  xfccByConnection.set(conn, { by: ownSpiffeId, value });
  return value;
}

/** Response headers that must not cross the proxy: the one hop-by-hop set (the body is re-framed per hop). */
const responseHopByHop = connectionHeaders;

/**
 * cleanResponseHeaders() straight from the flat raw list undici's dispatcher hands over (latin1 values, as
 * undici's own parsing), in one pass instead of parsing into an object and cleaning that into another.
 */
export function cleanRawResponseHeaders(raw: readonly (Buffer | string)[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  let connection: string[] | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    // undici's lookup returns its own lower-cased string for a well-known name, without decoding the bytes.
    const name = headerNameToString(raw[i] as Buffer | string);
    const rawValue = raw[i + 1] as Buffer | string;
    const value = typeof rawValue === 'string' ? rawValue : rawValue.toString('latin1');
    if (name === 'connection') { (connection ??= []).push(value); continue; }
    if (name.startsWith(':') || responseHopByHop.has(name) || name === '__proto__') continue;
    if (!Object.hasOwn(out, name)) { out[name] = value; continue; }
    const prev = out[name] as string | string[];
    if (typeof prev === 'string') out[name] = [prev, value];
    else prev.push(value);
  }
  if (connection) for (const name of connectionNominated(connection)) delete out[name];
  return out;
}

/**
 * A parsed response header object (node:http2's, an upgrade response's) as it may cross the proxy: pseudo-headers,
 * the hop-by-hop set and what `Connection` nominates removed, names lower-cased. Own keys only.
 */
export function cleanResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const conn = headers['connection'];
  const nominated = connectionNominated(Array.isArray(conn) ? conn : conn ? [conn] : undefined);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* : */) continue;
    const lower = name.toLowerCase();
    // An own `__proto__` key would set the prototype of `out` instead of a header: never copied (as the raw form).
    if (responseHopByHop.has(lower) || lower === '__proto__' || nominated.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}
