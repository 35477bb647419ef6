// Owns the JWT authentication contract between the data plane / CLI and src/jwt: find tokens where
// RequestAuthentication says, verify them with jose, and report verified / none / failed.

import type { VerifiedJwt } from '../policy/context-types.js';
import type { ReasonCode } from '../policy/decision.js';

export interface JwtRequestView {
  method: string;
  /** Raw request target (path + query) as sent. */
  target: string;
  /** Lower-cased header names; repeated headers as arrays. */
  headers: Record<string, string | string[] | undefined>;
}

export interface JwtHeaderEdits {
  /** Header names (lower-case) to remove before forwarding (token headers unless forwardOriginalToken). */
  remove: string[];
  /** Headers to set (outputPayloadToHeader, outputClaimToHeaders). */
  set: Record<string, string>;
}

export type AuthnResult =
  | { kind: 'none'; edits: JwtHeaderEdits }
  | { kind: 'verified'; jwt: VerifiedJwt; edits: JwtHeaderEdits }
  /** 401 (403 for a bad audience, as Envoy). `message` is Envoy's body text, e.g. `Jwt is expired`. */
  | { kind: 'failed'; status: 401 | 403; reason: ReasonCode; message: string };

export interface JwtAuthenticator {
  /** Never throws; an internal error is a failed result (fail closed). */
  authenticate(request: JwtRequestView): Promise<AuthnResult>;
  /** Stops background JWKS refreshes. */
  close(): void;
}

export interface JwtAuthenticatorOptions {
  /** Milliseconds since epoch; injected so tests and `check --now` control time. */
  now: () => number;
  /** Resolves a `jwksUri` to key-set JSON text. `file://` URIs are read locally; https only by `run`. */
  fetchJwks: (uri: string, timeoutMs: number) => Promise<string>;
  clockSkewSeconds: number;
  requireExpiration: boolean;
  maxTokenBytes: number;
  cacheTtlMs: number;
  refreshIntervalMs: number;
  staleGraceMs: number;
  unknownKidMinIntervalMs: number;
}
// Factory (src/jwt/authenticator.ts):
//   createJwtAuthenticator(providers: JwtProviderSpec[], options: JwtAuthenticatorOptions): JwtAuthenticator
