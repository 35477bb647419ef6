// Owns the pre-verification parse of a compact JWS JWT (strict base64url, JSON objects, forbidden header
// parameters) and the failure vocabulary: Envoy jwt_verify_lib status.cc bodies + Portcullis reason codes.

import type { ReasonCode } from '../policy/decision.js';

/** Envoy's exact 401/403 bodies (jwt_verify_lib status.cc, see shared/spec/istio.md §11). */
export const JwtMessage = {
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  verificationFails: 'Jwt verification fails',
  unknownIssuer: 'Jwt issuer is not configured',
  audienceNotAllowed: 'Audiences in Jwt are not allowed',
  badForm: 'Jwt is not in the form of Header.Payload.Signature',
  badHeader: 'Jwt header is an invalid Base64url input or an invalid JSON',
  badPayload: 'Jwt payload is an invalid Base64url input or an invalid JSON',
  noMatchingKey: "Jwks doesn't have key to match kid or alg from Jwt",
  jwksFetchFailed: 'Jwks remote fetch is failed',
} as const;

export interface JwtFailure {
  kind: 'failed';
  status: 401 | 403;
  reason: ReasonCode;
  message: string;
}

export function jwtFailure(reason: ReasonCode, message: string, status: 401 | 403 = 401): JwtFailure {
  return { kind: 'failed', status, reason, message };
}

/** Header parameters that point at attacker-chosen keys (RFC 8725 §3.10, CVE-2018-0114); never honoured. */
const FORBIDDEN_HEADER_PARAMS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'] as const;

export interface ParsedJwt {
  /** The compact serialization as received. */
  compact: string;
  header: Record<string, unknown>;
  alg: string;
  kid: string | undefined;
  /** The payload segment exactly as sent (what outputPayloadToHeader forwards, as Envoy does). */
  payloadSegment: string;
  payload: Record<string, unknown>;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeSegmentJson(segment: string): Record<string, unknown> | undefined {
  // Buffer's base64url decoder silently skips invalid characters, so the alphabet is checked first.
  if (segment.length === 0 || !BASE64URL.test(segment) || segment.length % 4 === 1) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/**
 * Splits and decodes a token. Duplicate JSON member names resolve to the last one (JSON.parse), which is
 * the "lexically last, consistently" choice RFC 7519 §4 permits; the signature covers the same bytes.
 */
export function parseJwt(compact: string): ParsedJwt | JwtFailure {
  const parts = compact.split('.');
  if (parts.length !== 3) return jwtFailure('jwt_malformed', JwtMessage.badForm);
  const [headerSegment, payloadSegment, signatureSegment] = parts as [string, string, string];
  const header = decodeSegmentJson(headerSegment);
  if (header === undefined) return jwtFailure('jwt_malformed', JwtMessage.badHeader);
  const alg = header['alg'];
  if (typeof alg !== 'string' || alg.length === 0) return jwtFailure('jwt_malformed', JwtMessage.badHeader);
  if (alg.toLowerCase() === 'none') return jwtFailure('jwt_forbidden_header', JwtMessage.verificationFails);
  for (const name of FORBIDDEN_HEADER_PARAMS) {
    if (Object.hasOwn(header, name)) return jwtFailure('jwt_forbidden_header', JwtMessage.verificationFails);
  }
  const kidValue = header['kid'];
  if (kidValue !== undefined && typeof kidValue !== 'string') return jwtFailure('jwt_malformed', JwtMessage.badHeader);
  const payload = decodeSegmentJson(payloadSegment);
  if (payload === undefined) return jwtFailure('jwt_malformed', JwtMessage.badPayload);
  if (signatureSegment.length === 0 || !BASE64URL.test(signatureSegment) || signatureSegment.length % 4 === 1) {
    return jwtFailure('jwt_bad_signature', JwtMessage.verificationFails);
  }
  return { compact, header, alg, kid: kidValue, payloadSegment, payload };
}

export function isFailure(value: unknown): value is JwtFailure {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'failed';
}
