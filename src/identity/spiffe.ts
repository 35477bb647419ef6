// Owns SPIFFE ID syntax: strict parsing (pure, no I/O) and the PeerIdentity derived from an ID.
// Follows the SPIFFE-ID standard (standards/SPIFFE-ID.md) as enforced by go-spiffe's `spiffeid` package.

import type { PeerIdentity } from '../policy/context-types.js';
import type { SpiffeId } from './types.js';

export type SpiffeIdResult = { ok: true; id: SpiffeId } | { ok: false; error: string };

const SCHEME = 'spiffe://';
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return code >= 0x21 && code < 0x7f ? `'${ch}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Trust domain name rules: non-empty, ≤255 chars, only lowercase letters, digits, `.`, `-`, `_`. */
export function checkTrustDomain(name: string): string | undefined {
  if (name.length === 0) return 'trust domain is missing';
  if (name.length > MAX_TRUST_DOMAIN) return `trust domain is longer than ${MAX_TRUST_DOMAIN} characters`;
  for (const ch of name) {
    if (!TRUST_DOMAIN_CHAR.test(ch)) {
      if (ch === ':') return 'trust domain must not contain a port';
      if (ch === '@') return 'trust domain must not contain userinfo';
      if (ch >= 'A' && ch <= 'Z') return 'trust domain must be lowercase';
      return `trust domain contains invalid character ${describeChar(ch)}`;
    }
  }
  return undefined;
}

/** Path rules: empty, or `/`-separated segments of `[A-Za-z0-9._-]`, none empty, `.` or `..`. */
export function checkPath(path: string): string | undefined {
  if (path === '') return undefined;
  if (!path.startsWith('/')) return 'path must start with /';
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '') return i === segments.length - 1 ? 'path must not end with /' : 'path has an empty segment';
    if (seg === '.' || seg === '..') return `path segment '${seg}' is not allowed`;
    if (!PATH_SEGMENT.test(seg)) {
      const bad = [...seg].find((c) => !/[A-Za-z0-9._-]/.test(c)) ?? '?';
      if (bad === '%') return 'percent-encoding is not allowed';
      if (bad === '?') return 'query is not allowed';
      if (bad === '#') return 'fragment is not allowed';
      return `path contains invalid character ${describeChar(bad)}`;
    }
  }
  return undefined;
}

/**
 * Parses a SPIFFE ID. By default a workload ID is required (non-empty path, as an X509-SVID leaf
 * must carry); pass `allowTrustDomainOnly` to also accept `spiffe://<td>`.
 */
export function parseSpiffeId(text: string, opts: { allowTrustDomainOnly?: boolean } = {}): SpiffeIdResult {
  const fail = (error: string): SpiffeIdResult => ({ ok: false, error });
  if (typeof text !== 'string' || text.length === 0) return fail('SPIFFE ID is empty');
  if (Buffer.byteLength(text, 'utf8') > MAX_ID_BYTES) return fail(`SPIFFE ID is longer than ${MAX_ID_BYTES} bytes`);
  if (!text.startsWith(SCHEME)) {
    if (text.toLowerCase().startsWith(SCHEME)) return fail('scheme must be lowercase spiffe://');
    return fail('scheme must be spiffe://');
  }
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const tdError = checkTrustDomain(trustDomain);
  if (tdError) return fail(tdError);
  const pathError = checkPath(path);
  if (pathError) return fail(pathError);
  if (path === '' && !opts.allowTrustDomainOnly) return fail('SPIFFE ID has no path (a trust domain is not a workload identity)');
  return { ok: true, id: { trustDomain, path, text } };
}

/** PeerIdentity for a parsed ID; namespace/serviceAccount only for the exact `/ns/<ns>/sa/<sa>` shape. */
export function toPeerIdentity(id: SpiffeId): PeerIdentity {
  const segments = id.path.split('/');
  const k8s = segments.length === 5 && segments[0] === '' && segments[1] === 'ns' && segments[3] === 'sa';
  return {
    spiffeId: id.text,
    principal: id.text.slice(SCHEME.length),
    trustDomain: id.trustDomain,
    namespace: k8s ? segments[2] : undefined,
    serviceAccount: k8s ? segments[4] : undefined,
  };
}
