// Owns JWT authentication for RequestAuthentication: find tokens, verify them with jose against pinned JWKS
// keys, and answer verified / none / failed. Follows shared/spec/istio.md §10-§11 and security.md PC-26/27.

import type { JwtProviderSpec } from '../policy/ir.js';
import type { VerifiedJwt } from '../policy/context-types.js';
import type { AuthnResult, JwtAuthenticator, JwtAuthenticatorOptions, JwtHeaderEdits, JwtRequestView } from './types.js';
import { extractTokens, planLocations, type ExtractedToken, type TokenLocation } from './extract.js';
import { candidateKeys, importPinned, loadJose, parseKeySet, type KeySet } from './keys.js';
import { JwksCache } from './jwks-cache.js';
import { isFailure, JwtMessage, jwtFailure, parseJwt, type JwtFailure, type ParsedJwt } from './token.js';
import { VerifiedSignatureCache } from './verified-cache.js';

/** Istio always splits these claims on spaces before matching (istio.md §10). */
const ALWAYS_SPACE_DELIMITED = ['scope', 'permission'];

type KeySource =
  | { kind: 'inline'; keys: KeySet }
  | { kind: 'uri'; uri: string }
  /** No key set at all (Istio's fallback JWKS): every token for this provider fails. */
  | { kind: 'unusable'; why: string };

interface Provider {
  spec: JwtProviderSpec;
  keys: KeySource;
  spaceDelimitedClaims: string[];
}

interface Verified {
  kind: 'ok';
  provider: Provider;
  token: ExtractedToken;
  parsed: ParsedJwt;
}

function keySourceFor(spec: JwtProviderSpec, warnings: string[]): KeySource {
  const name = `${spec.policy.namespace}/${spec.policy.name} issuer "${spec.issuer}"`;
  if (spec.jwks.kind === 'uri') return { kind: 'uri', uri: spec.jwks.uri };
  if (spec.jwks.kind === 'none') {
    warnings.push(`${name}: no jwks or jwksUri; every token for this issuer is rejected`);
    return { kind: 'unusable', why: 'no key set configured' };
  }
  try {
    const keys = parseKeySet(spec.jwks.json);
    for (const skipped of keys.skipped) warnings.push(`${name}: inline jwks ${skipped}; key ignored`);
    return { kind: 'inline', keys };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    warnings.push(`${name}: inline jwks unusable (${why}); every token for this issuer is rejected`);
    return { kind: 'unusable', why };
  }
}

export function isCorsPreflight(request: JwtRequestView): boolean {
  const present = (name: string): boolean => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.some((v) => v.length > 0) : value !== undefined && value.length > 0;
  };
  return request.method === 'OPTIONS' && present('origin') && present('access-control-request-method');
}

/** RFC 9110 token; also keeps pseudo-headers (`:path`) out of reach of policy-configured output headers. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Header values Node would refuse to send (CR, LF, NUL, other controls, > U+00FF) are never emitted. */
const SAFE_HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function claimHeaderValue(payload: Record<string, unknown>, claim: string): string | undefined {
  let value: unknown = payload;
  for (const part of claim.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' && Number.isFinite(value)) text = claimNumberToString(value);
  else if (typeof value === 'boolean') text = value ? 'true' : 'false';
  else return undefined;
  // Envoy adds nothing for an empty value.
  return text.length > 0 && SAFE_HEADER_VALUE.test(text) ? text : undefined;
}

/** Envoy convertClaimDoubleToString: non-negative integers as integers, anything else as C `%f`. */
function claimNumberToString(value: number): string {
  if (value >= 0 && value < 2 ** 64 && Number.isInteger(value)) return BigInt(value).toString();
  return value.toFixed(6);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}

/** The claims whose string values policy matching splits on spaces, for one provider. */
export function spaceDelimitedClaimsOf(spec: JwtProviderSpec): string[] {
  return [...new Set([...ALWAYS_SPACE_DELIMITED, ...spec.spaceDelimitedClaims])];
}

/**
 * Every header a provider writes: stripped from client requests, so a client can never pose as the verified
 * token's claims (whether or not a token is present). Invalid names are reported and never written.
 */
export function outputHeaderNames(providerSpecs: readonly JwtProviderSpec[], warnings: string[]): string[] {
  return [
    ...new Set(
      providerSpecs.flatMap((spec) => [
        ...(spec.outputPayloadToHeader ? [spec.outputPayloadToHeader.toLowerCase()] : []),
        ...spec.outputClaimToHeaders.map((c) => c.header.toLowerCase()),
      ]),
    ),
  ].filter((name) => {
    if (HEADER_NAME.test(name)) return true;
    warnings.push(`output header ${JSON.stringify(name)} is not a valid HTTP header name; it is never written`);
    return false;
  });
}

/** Envoy's audience check: a provider with audiences wants one of them in `aud` (a string or a list). */
export function audienceAllowed(spec: JwtProviderSpec, aud: unknown): boolean {
  const wanted = spec.audiences;
  if (wanted.length === 0) return true;
  const tokenAudiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  return tokenAudiences.some((a) => wanted.includes(a));
}

/**
 * The verified outcome of a token `spec` accepted: the claims policy sees and the header edits (claim outputs,
 * token removal unless forwardOriginalToken). Shared with `portcullis replay`, which re-decides recorded claims.
 */
export function verifiedOutcome(
  spec: JwtProviderSpec,
  spaceDelimitedClaims: readonly string[],
  outputHeaders: readonly string[],
  payload: Record<string, unknown>,
  payloadSegment: string,
  locations: readonly TokenLocation[],
): AuthnResult {
  const set: Record<string, string> = {};
  const writable = (name: string | undefined): name is string => name !== undefined && outputHeaders.includes(name.toLowerCase());
  if (writable(spec.outputPayloadToHeader)) set[spec.outputPayloadToHeader.toLowerCase()] = payloadSegment;
  for (const { header, claim } of spec.outputClaimToHeaders) {
    const value = writable(header) ? claimHeaderValue(payload, claim) : undefined;
    if (value !== undefined) set[header.toLowerCase()] = value;
  }
  const remove = new Set(outputHeaders);
  const removeQueryParams: string[] = [];
  if (!spec.forwardOriginalToken) {
    // As Envoy: the token header is dropped, a query-borne token is cut from the target, cookies stay.
    for (const location of locations) {
      if (location.kind === 'header') remove.add(location.name);
      else if (location.kind === 'param') removeQueryParams.push(location.name);
    }
  }
  for (const name of Object.keys(set)) remove.delete(name);
  const iss = payload['iss'];
  const sub = payload['sub'];
  // Frozen here, as the request context wants it: the context otherwise froze a spread copy per request, whose
  // map was new every time (a new frozen map per request, and every later read of it missed its inline cache).
  const jwt: VerifiedJwt = Object.freeze({
    issuer: typeof iss === 'string' ? iss : '',
    subject: typeof sub === 'string' ? sub : '',
    claims: deepFreeze(payload),
  });
  const edits: JwtHeaderEdits = { remove: [...remove], set, ...(removeQueryParams.length > 0 ? { removeQueryParams } : {}) };
  return { kind: 'verified', jwt, edits, spaceDelimitedClaims: [...spaceDelimitedClaims] };
}

/** A JWKS cache with the authenticator options' TTL, refresh, grace and refetch limits (to share: `jwksCache`). */
export function jwksCacheFor(options: JwtAuthenticatorOptions): JwksCache {
  return new JwksCache({
    now: options.now,
    fetchJwks: options.fetchJwks,
    cacheTtlMs: options.cacheTtlMs,
    refreshIntervalMs: options.refreshIntervalMs,
    staleGraceMs: options.staleGraceMs,
    unknownKidMinIntervalMs: options.unknownKidMinIntervalMs,
    retryAfterFailureMs: options.retryAfterFailureMs ?? 1000,
    ...(options.onJwksFetchError ? { onFetchError: options.onJwksFetchError } : {}),
  });
}

export function createJwtAuthenticator(providerSpecs: JwtProviderSpec[], options: JwtAuthenticatorOptions): JwtAuthenticator {
  const warnings: string[] = [];
  const providers: Provider[] = providerSpecs.map((spec) => ({
    spec,
    keys: keySourceFor(spec, warnings),
    spaceDelimitedClaims: spaceDelimitedClaimsOf(spec),
  }));
  const plans = planLocations(providerSpecs);
  const outputHeaders = outputHeaderNames(providerSpecs, warnings);
  const cache = options.jwksCache ?? jwksCacheFor(options);
  const registered: string[] = [];
  for (const provider of providers) {
    if (provider.keys.kind !== 'uri') continue;
    cache.register(provider.keys.uri, provider.spec.timeoutMs);
    registered.push(provider.keys.uri);
  }

  const noneEdits = (): JwtHeaderEdits => ({ remove: [...outputHeaders], set: {} });
  // Signature verification is most of a JWT request's cost; a repeated token is checked once per key set.
  const verified = new VerifiedSignatureCache<KeySet, Provider, ParsedJwt>(options.verifiedTokenCacheSize ?? 1000);

  async function keysFor(provider: Provider): Promise<KeySet | JwtFailure> {
    const source = provider.keys;
    if (source.kind === 'inline') return source.keys;
    if (source.kind === 'unusable') return jwtFailure('jwks_unavailable', JwtMessage.jwksFetchFailed);
    const lookup = await cache.get(source.uri);
    return lookup.kind === 'keys' ? lookup.keys : jwtFailure('jwks_unavailable', JwtMessage.jwksFetchFailed);
  }

  async function verifySignature(provider: Provider, parsed: ParsedJwt): Promise<JwtFailure | undefined> {
    const keySet = await keysFor(provider);
    if (isFailure(keySet)) return keySet;
    if (verified.has(parsed.compact, provider, keySet)) return undefined;
    let usedKeys = keySet;
    let candidates = candidateKeys(keySet, parsed.kid, parsed.alg);
    if (candidates.length === 0 && provider.keys.kind === 'uri') {
      const refreshed = await cache.refetchForUnknownKid(provider.keys.uri);
      if (refreshed.kind === 'keys') {
        usedKeys = refreshed.keys;
        candidates = candidateKeys(usedKeys, parsed.kid, parsed.alg);
      }
    }
    if (candidates.length === 0) return jwtFailure('jwt_no_matching_key', JwtMessage.noMatchingKey);
    for (const key of candidates) {
      try {
        const cryptoKey = await importPinned(key, parsed.alg);
        const { compactVerify } = await loadJose();
        // The algorithm list is the one the key is pinned to, never the token's own claim alone.
        await compactVerify(parsed.compact, cryptoKey, { algorithms: [parsed.alg] });
        // The parse is kept with the signature and shared by later requests with this token: frozen, so none can change it.
        deepFreeze(parsed);
        verified.add(parsed.compact, provider, usedKeys, parsed);
        return undefined;
      } catch {
        // Try the next candidate; Envoy also accepts a token if any matching key verifies it.
      }
    }
    return jwtFailure('jwt_bad_signature', JwtMessage.verificationFails);
  }

  function checkClaims(provider: Provider, parsed: ParsedJwt): JwtFailure | undefined {
    const { exp, nbf, aud } = parsed.payload;
    if ((exp !== undefined && typeof exp !== 'number') || (nbf !== undefined && typeof nbf !== 'number')) {
      return jwtFailure('jwt_malformed', JwtMessage.badPayload);
    }
    // Whole seconds and nbf before exp, as jwt_verify_lib verifyTimeConstraint.
    const nowSeconds = Math.floor(options.now() / 1000);
    const skew = options.clockSkewSeconds;
    if (nbf !== undefined && nowSeconds + skew < nbf) return jwtFailure('jwt_not_yet_valid', JwtMessage.notYetValid);
    if (exp === undefined && (options.requireExpiration || provider.spec.requireExpiration === true)) return jwtFailure('jwt_expired', JwtMessage.verificationFails);
    if (exp !== undefined && nowSeconds > exp + skew) return jwtFailure('jwt_expired', JwtMessage.expired);
    if (!audienceAllowed(provider.spec, aud)) return jwtFailure('jwt_bad_audience', JwtMessage.audienceNotAllowed, 403);
    return undefined;
  }

  /** The providers that may verify a token, in the order they are tried: its issuer's, else the issuer-less ones. */
  function providersFor(token: ExtractedToken, parsed: ParsedJwt): Provider[] | JwtFailure {
    const iss = parsed.payload['iss'];
    if (iss !== undefined && typeof iss !== 'string') return jwtFailure('jwt_malformed', JwtMessage.badPayload);
    // Only providers that configured the location the token came from may verify it (Envoy isIssuerAllowed).
    const eligible = token.providers.map((i) => providers[i]!);
    let matching = eligible.filter((p) => iss !== undefined && p.spec.issuer === iss);
    if (matching.length === 0) matching = eligible.filter((p) => p.spec.issuer === '');
    if (matching.length === 0) return jwtFailure('jwt_unknown_issuer', JwtMessage.unknownIssuer);
    return matching;
  }

  async function verifyToken(token: ExtractedToken): Promise<Verified | JwtFailure> {
    if (Buffer.byteLength(token.token, 'utf8') > options.maxTokenBytes) {
      return jwtFailure('jwt_too_large', JwtMessage.verificationFails);
    }
    const parsed = parseJwt(token.token);
    if (isFailure(parsed)) return parsed;
    const matching = providersFor(token, parsed);
    if (isFailure(matching)) return matching;
    let firstFailure: JwtFailure | undefined;
    for (const provider of matching) {
      const failure = (await verifySignature(provider, parsed)) ?? checkClaims(provider, parsed);
      if (failure === undefined) return { kind: 'ok', provider, token, parsed };
      firstFailure ??= failure;
    }
    return firstFailure!;
  }

  /**
   * verifyToken's answer when it needs no waiting: every provider it would try has its keys at hand and has
   * verified this exact token's signature before (the usual repeated token). Null when any of them would need
   * a fetch or a signature check: then verifyToken decides, from the start, as it always does.
   */
  function verifyTokenAtOnce(token: ExtractedToken): Verified | JwtFailure | null {
    const parsed = verified.parsedOf(token.token) ?? parseJwt(token.token);
    if (isFailure(parsed)) return parsed;
    const matching = providersFor(token, parsed);
    if (isFailure(matching)) return matching;
    let firstFailure: JwtFailure | undefined;
    for (const provider of matching) {
      const source = provider.keys;
      const keySet = source.kind === 'inline' ? source.keys : source.kind === 'uri' ? cache.fresh(source.uri) : undefined;
      if (keySet === undefined || !verified.has(parsed.compact, provider, keySet)) return null;
      const failure = checkClaims(provider, parsed);
      if (failure === undefined) return { kind: 'ok', provider, token, parsed };
      firstFailure ??= failure;
    }
    return firstFailure!;
  }

  function verifiedResult(ok: Verified): AuthnResult {
    return verifiedOutcome(ok.provider.spec, ok.provider.spaceDelimitedClaims, outputHeaders, ok.parsed.payload, ok.parsed.payloadSegment, ok.token.locations);
  }

  /**
   * Synchronous for a request without a token and for the usual repeated token (verifyTokenAtOnce): only a
   * request that waits for keys or a signature check costs the data plane a promise.
   */
  function authenticate(request: JwtRequestView): Promise<AuthnResult> | AuthnResult {
    try {
      if (providers.length === 0) return { kind: 'none', edits: { remove: [], set: {} } };
      // Envoy bypass_cors_preflight, as Istio configures it: authorization still applies afterwards.
      if (isCorsPreflight(request)) return { kind: 'none', edits: noneEdits() };
      const tokens = extractTokens(plans, request);
      if (tokens.length === 0) return { kind: 'none', edits: noneEdits() };
      // Size is checked before any decoding so an oversized token costs nothing but a length read.
      const oversized = tokens.find((t) => Buffer.byteLength(t.token, 'utf8') > options.maxTokenBytes);
      if (oversized) return jwtFailure('jwt_too_large', JwtMessage.verificationFails);
      if (tokens.length === 1) {
        const atOnce = verifyTokenAtOnce(tokens[0] as ExtractedToken);
        if (atOnce !== null) return isFailure(atOnce) ? atOnce : verifiedResult(atOnce);
      }
      return verifyTokens(tokens);
    } catch {
      return jwtFailure('jwt_invalid', JwtMessage.verificationFails);
    }
  }

  async function verifyTokens(tokens: ExtractedToken[]): Promise<AuthnResult> {
    try {
      const results = await Promise.all(tokens.map(verifyToken));
      const failure = results.find(isFailure);
      if (failure) return failure;
      if (results.length > 1) {
        // Several valid tokens: Istio leaves the principal undefined; Portcullis refuses instead of picking one.
        return jwtFailure('jwt_multiple', JwtMessage.verificationFails);
      }
      return verifiedResult(results[0] as Verified);
    } catch {
      return jwtFailure('jwt_invalid', JwtMessage.verificationFails);
    }
  }

  return {
    authenticate,
    close: options.jwksCache ? () => { for (const uri of registered.splice(0)) cache.release(uri); } : () => cache.close(),
    ready: () => cache.settle(),
    warnings,
  };
}
