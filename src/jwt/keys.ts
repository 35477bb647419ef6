// Owns JWKS parsing and per-key algorithm pinning: each usable key admits only the algorithms its own
// `alg` (or kty/crv) allows (RFC 8725 §3.1, security.md PC-26); keys are imported once with jose and reused.

import type { CryptoKey, JWK } from 'jose';

let jose: Promise<typeof import('jose')> | undefined;
/** jose, loaded when a key is first imported: a sidecar whose policies verify no JWT never loads it (about 0.5 MB of heap). */
export function loadJose(): Promise<typeof import('jose')> {
  jose ??= import('jose');
  return jose;
}

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
const EC_ALG_BY_CURVE: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const OKP_ALGS_BY_CURVE: Record<string, readonly string[]> = { Ed25519: ['EdDSA', 'Ed25519'] };

export interface PinnedKey {
  kid: string | undefined;
  /** Algorithms this key may verify; never empty. */
  algorithms: ReadonlySet<string>;
  jwk: JWK;
  /** WebCrypto binds a key to one algorithm, so imports are cached per algorithm. */
  imported: Map<string, Promise<CryptoKey | Uint8Array>>;
}

export interface KeySet {
  keys: PinnedKey[];
  /** Keys present in the document but not usable (why), for diagnostics. */
  skipped: string[];
}

/** The algorithms a JWK may be used with, or a reason it is not usable for JWT signatures. */
export function pinAlgorithms(jwk: Record<string, unknown>): string[] | string {
  const kty = jwk['kty'];
  const declared = jwk['alg'];
  const use = jwk['use'];
  if (use !== undefined && use !== 'sig') return `use "${String(use)}" is not "sig"`;
  if (declared !== undefined && typeof declared !== 'string') return 'alg is not a string';
  if (jwk['d'] !== undefined) return 'private key material in a JWKS';
  let allowed: readonly string[];
  if (kty === 'RSA') {
    if (typeof jwk['n'] !== 'string' || typeof jwk['e'] !== 'string') return 'RSA key without n/e';
    allowed = RSA_ALGS;
  } else if (kty === 'EC') {
    const alg = typeof jwk['crv'] === 'string' ? EC_ALG_BY_CURVE[jwk['crv']] : undefined;
    if (alg === undefined) return `unsupported EC curve ${String(jwk['crv'])}`;
    allowed = [alg];
  } else if (kty === 'OKP') {
    const algs = typeof jwk['crv'] === 'string' ? OKP_ALGS_BY_CURVE[jwk['crv']] : undefined;
    if (algs === undefined) return `unsupported OKP curve ${String(jwk['crv'])}`;
    allowed = algs;
  } else {
    // Symmetric (`oct`) keys are refused: a verification key must never double as an HMAC secret.
    return `unsupported kty ${String(kty)}`;
  }
  if (declared === undefined) return [...allowed];
  if (!allowed.includes(declared)) return `alg ${declared} does not match kty ${String(kty)}`;
  // EdDSA and Ed25519 name the same algorithm for an Ed25519 key.
  return kty === 'OKP' ? [...allowed] : [declared];
}

/** Parses a JWKS document. Throws on text that is not a key set with at least one usable key. */
export function parseKeySet(text: string): KeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('JWKS is not valid JSON');
  }
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('JWKS has no "keys" array');
  }
  const keys: PinnedKey[] = [];
  const skipped: string[] = [];
  for (const [index, raw] of ((doc as { keys: unknown[] }).keys).entries()) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      skipped.push(`keys[${index}]: not an object`);
      continue;
    }
    const jwk = raw as Record<string, unknown>;
    const pinned = pinAlgorithms(jwk);
    if (typeof pinned === 'string') {
      skipped.push(`keys[${index}]: ${pinned}`);
      continue;
    }
    const kid = jwk['kid'];
    keys.push({
      kid: typeof kid === 'string' ? kid : undefined,
      algorithms: new Set(pinned),
      jwk: jwk as JWK,
      imported: new Map(),
    });
  }
  if (keys.length === 0) throw new Error(`JWKS has no usable signature key${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
  return { keys, skipped };
}

/** Keys that may verify a token with this kid/alg (a token kid only selects; keys without kid stay candidates, as Envoy). */
export function candidateKeys(set: KeySet, kid: string | undefined, alg: string): PinnedKey[] {
  return set.keys.filter((key) => key.algorithms.has(alg) && (kid === undefined || key.kid === undefined || key.kid === kid));
}

export function importPinned(key: PinnedKey, alg: string): Promise<CryptoKey | Uint8Array> {
  let imported = key.imported.get(alg);
  if (imported === undefined) {
    imported = loadJose().then(({ importJWK }) => importJWK({ ...key.jwk, alg }, alg));
    // Key material never changes, so a failed import stays failed; the no-op handler only keeps Node
    // from reporting the cached rejection as unhandled.
    imported.catch(() => undefined);
    key.imported.set(alg, imported);
  }
  return imported;
}
