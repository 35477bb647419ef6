// Owns buildRequestContext: parse the request target once, normalize the path (Istio's modes),
// canonicalize the authority, lower-case and join headers; malformed input becomes a bad request (400).
// Follows istio.md §4-§6 (Envoy HCM behaviour) and security.md PC-1, PC-2, PC-6, PC-7, PC-9.
import type { BadRequestReason, ContextResult, RequestContext, RequestInput } from './context-types.js';
import type { PathNormalization } from './ir.js';
import { hasValidPercentEncoding, normalizePath } from './normalize-path.js';

export interface ContextOptions {
  pathNormalization: PathNormalization;
  rejectEncodedSlashes: boolean;
}

const METHOD = /^[A-Z][A-Z-]{0,31}$/;
/** RFC 9110 tchar without `_` (PC-9: underscore names are folded into hyphens by some backends). */
const HEADER_NAME = /^[!#$%&'*+\-.^`|~0-9A-Za-z]+$/;
/** Header values: no NUL, CR or LF (Envoy CVE-2019-9900: NUL made two matchers disagree). */
const BAD_HEADER_VALUE = /[\0\r\n]/;
/** Request-target characters: visible ASCII only (raw spaces and controls are refused, as llhttp does). */
const PATH_CHARS = /^[\x21-\x7e]*$/;
const ENCODED_SLASH = /%(?:2f|5c)/i;
const REG_NAME = /^[a-z0-9._~-]+$/;
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/;
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/i;

/**
 * What every context's headers inherit: an empty, frozen object with no prototype, so no name from
 * Object.prototype (`constructor`, `toString`) reads as a header. A bag made from it is an ordinary fast object:
 * bags of the same header names share their maps, frozen ones too, where freezing an `Object.create(null)`
 * object (always a dictionary) copies its map for every request (docs/loadtest.md, seventh round).
 */
const headerBagPrototype: object = Object.freeze(Object.create(null) as object);
const newHeaderBag = (): Record<string, string> => Object.create(headerBagPrototype) as Record<string, string>;
const noHeaders: Record<string, string> = Object.freeze(newHeaderBag());

function bad(reason: BadRequestReason, detail: string): ContextResult {
  return { ok: false, reason, detail };
}

interface Authority {
  authority: string;
  host: string;
}

/** Lower-cases and validates an authority: no userinfo, a plain host or IP literal, an optional valid port. */
export function parseAuthority(raw: string): Authority | string {
  if (raw.length === 0) return 'missing authority';
  if (raw.length > 1024) return 'authority too long';
  const lower = raw.toLowerCase();
  if (lower.includes('@')) return 'userinfo is not allowed in the authority';
  let hostPart: string;
  let portPart: string | undefined;
  if (lower.startsWith('[')) {
    const close = lower.indexOf(']');
    if (close === -1) return 'unterminated IPv6 literal';
    hostPart = lower.slice(0, close + 1);
    const rest = lower.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(':')) return 'garbage after IPv6 literal';
      portPart = rest.slice(1);
    }
    if (!IPV6_LITERAL.test(hostPart)) return 'invalid IPv6 literal';
  } else {
    const colon = lower.indexOf(':');
    hostPart = colon === -1 ? lower : lower.slice(0, colon);
    portPart = colon === -1 ? undefined : lower.slice(colon + 1);
    if (!REG_NAME.test(hostPart)) return 'invalid host';
  }
  if (portPart !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portPart) || Number(portPart) > 65535) return 'invalid port';
  }
  // PC-6: a trailing dot names the same host; strip it in both forms so a DENY on `hosts` cannot be sidestepped.
  const host = hostPart.length > 1 && hostPart.endsWith('.') ? hostPart.slice(0, -1) : hostPart;
  if (host.length === 0 || host === '.') return 'invalid host';
  return { authority: portPart === undefined ? host : `${host}:${portPart}`, host };
}

interface Target {
  path: string;
  query: string;
  authority: string | undefined;
}

function parseTarget(method: string, target: string): Target | ContextResult {
  if (target.length === 0) return bad('bad_path', 'empty request target');
  if (target.length > 65536) return bad('bad_path', 'request target too long');
  if (target.includes('\0')) return bad('nul_in_path', 'NUL byte in request target');
  if (!PATH_CHARS.test(target)) return bad('bad_path', 'request target contains spaces, controls or non-ASCII characters');
  if (target === '*') {
    if (method !== 'OPTIONS') return bad('bad_path', 'asterisk-form is only allowed for OPTIONS');
    return { path: '*', query: '', authority: undefined };
  }
  let authority: string | undefined;
  let rest = target;
  if (!target.startsWith('/')) {
    const m = ABSOLUTE_FORM.exec(target);
    if (!m) return bad('bad_path', 'request target is neither origin-form nor absolute-form');
    authority = m[2] as string;
    rest = (m[3] as string).length === 0 || (m[3] as string).startsWith('?') || (m[3] as string).startsWith('#') ? '/' + (m[3] as string) : (m[3] as string);
  }
  // PC-1: the fragment never reaches matching or the upstream.
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  return { path, query, authority };
}

/** Joins repeated headers with `,` (Envoy's header-matcher contract) and validates names and values. */
function buildHeaders(input: RequestInput['headers']): { headers: Record<string, string> } | ContextResult {
  const out = newHeaderBag();
  for (const rawName of Object.keys(input)) {
    // Pseudo-headers come from HTTP/2 framing, not from the caller; the context exposes them as fields.
    if (rawName.startsWith(':')) continue;
    if (!HEADER_NAME.test(rawName)) return bad('bad_header', `invalid header name ${JSON.stringify(rawName.slice(0, 64))}`);
    const name = rawName.toLowerCase();
    const value = input[rawName];
    let joined: string;
    // One value is the usual case: no array is made to join it.
    if (typeof value === 'string') {
      if (BAD_HEADER_VALUE.test(value)) return bad('bad_header', `header ${name} contains NUL, CR or LF`);
      joined = value;
    } else {
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) {
        if (typeof v !== 'string') return bad('bad_header', `header ${name} has a non-string value`);
        if (BAD_HEADER_VALUE.test(v)) return bad('bad_header', `header ${name} contains NUL, CR or LF`);
      }
      joined = values.join(',');
    }
    const prior = out[name];
    out[name] = prior === undefined ? joined : `${prior},${joined}`;
  }
  return { headers: Object.freeze(out) };
}

/** Raw request facts -> the frozen RequestContext every matcher reads, or the reason it is a 400. */
export function buildRequestContext(input: RequestInput, options: ContextOptions): ContextResult {
  const isTcp = input.protocol === 'tcp';
  let method = '';
  let path = '';
  let query = '';
  let authority = '';
  let host = '';
  let headers = noHeaders;

  if (!isTcp) {
    method = input.method;
    if (typeof method !== 'string' || !METHOD.test(method)) return bad('bad_method', `method must be an upper-case token, got ${JSON.stringify(String(method).slice(0, 32))}`);
    const target = parseTarget(method, input.path);
    if ('ok' in target) return target;
    let rawPath = target.path;
    if (rawPath !== '*') {
      if (rawPath.includes('%00')) return bad('nul_in_path', '%00 in path');
      if (!hasValidPercentEncoding(rawPath)) return bad('bad_path', 'malformed percent-encoding in path');
      if (options.rejectEncodedSlashes && ENCODED_SLASH.test(rawPath)) return bad('encoded_slash_rejected', 'encoded / or \\ in path');
      rawPath = normalizePath(rawPath, options.pathNormalization);
    }
    if (target.query.includes('%00')) return bad('nul_in_path', '%00 in query');
    path = rawPath;
    query = target.query;
    const parsed = parseAuthority(target.authority ?? input.host);
    if (typeof parsed === 'string') return bad('bad_authority', parsed);
    authority = parsed.authority;
    host = parsed.host;
    const h = buildHeaders(input.headers);
    if ('ok' in h) return h;
    headers = h.headers;
  } else if (input.host) {
    const parsed = parseAuthority(input.host);
    if (typeof parsed !== 'string') {
      authority = parsed.authority;
      host = parsed.host;
    }
  }

  const context: RequestContext = Object.freeze({
    protocol: input.protocol,
    method,
    path,
    query,
    authority,
    host,
    headers,
    peer: input.peer ? (Object.isFrozen(input.peer) ? input.peer : Object.freeze({ ...input.peer })) : null,
    sourceIp: input.sourceIp,
    remoteIp: input.remoteIp ?? input.sourceIp,
    destinationIp: input.destinationIp,
    port: input.port,
    sni: input.sni,
    jwt: input.jwt ? (Object.isFrozen(input.jwt) ? input.jwt : Object.freeze({ ...input.jwt })) : null,
  });
  return { ok: true, context };
}
