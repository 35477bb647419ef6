// Owns the JWT authentication contract between the data plane / CLI and src/jwt: find tokens where
// RequestAuthentication says, verify them with jose, and report verified / none / failed.

import type { VerifiedJwt } from '../policy/context-types.js';
import type { ReasonCode } from '../policy/decision.js';
import type { JwksCache } from './jwks-cache.js';

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
  /**
   * Query parameters to drop from the forwarded target (a query-borne token unless forwardOriginalToken;
   * Envoy JwtParamLocation::removeJwt). Optional for compatibility; absent or empty = keep the target.
   */
  removeQueryParams?: string[];
}

export type AuthnResult =
  | { kind: 'none'; edits: JwtHeaderEdits }
  | {
      kind: 'verified';
      jwt: VerifiedJwt;
      edits: JwtHeaderEdits;
      /**
       * Claims whose string values policy matching splits on spaces: `scope`, `permission` and the verifying
       * provider's spaceDelimitedClaims (Istio 1.28+). Optional for compatibility.
       */
      spaceDelimitedClaims?: string[];
    }
  /** 401 (403 for a bad audience, as Envoy). `message` is Envoy's body text, e.g. `Jwt is expired`. */
  | { kind: 'failed'; status: 401 | 403; reason: ReasonCode; message: string };

export interface JwtAuthenticator {
  /** Never throws; an internal error is a failed result (fail closed). Synchronous when nothing is fetched or verified (replay). */
  authenticate(request: JwtRequestView): Promise<AuthnResult> | AuthnResult;
  /** Stops background JWKS refreshes. */
  close(): void;
  /** Resolves once the first fetch of every JWKS URI has finished (successfully or not). Optional. */
  ready?(): Promise<void>;
  /** Configuration problems found at construction (unusable inline JWKS keys, ...). Optional. */
  readonly warnings?: readonly string[];
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
  /** After a failed JWKS fetch, no new fetch is started for this long (default 1000 ms, Envoy async_fetch). */
  retryAfterFailureMs?: number;
  /** Verified-signature cache entries (exact token bytes + key set); default 1000, 0 = off. */
  verifiedTokenCacheSize?: number;
  /** Observer for JWKS fetch failures (logs, metrics). Must not throw. */
  onJwksFetchError?: (uri: string, error: unknown) => void;
  /**
   * A key cache shared with other authenticators (`run`: one for every policy snapshot, so a reload keeps
   * warm keys); close() then releases this authenticator's URIs instead of closing it. Default: its own.
   */
  jwksCache?: JwksCache;
}
// Factory (src/jwt/authenticator.ts):
//   createJwtAuthenticator(providers: JwtProviderSpec[], options: JwtAuthenticatorOptions): JwtAuthenticator
