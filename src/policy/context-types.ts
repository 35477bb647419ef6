// Owns the shapes of a request as the policy core sees it: RequestInput (raw facts from the wire or
// from `portcullis check` JSON) and RequestContext (parsed, normalized, frozen; what matchers read).

/** A verified peer identity (computed once per connection by src/identity). */
export interface PeerIdentity {
  /** Full SPIFFE ID, `spiffe://cluster.local/ns/foo/sa/bar`. */
  spiffeId: string;
  /** The ID without scheme: `cluster.local/ns/foo/sa/bar` (Istio `source.principal`). */
  principal: string;
  trustDomain: string;
  /** From `/ns/<ns>/sa/<sa>` paths; undefined for other path shapes. */
  namespace: string | undefined;
  serviceAccount: string | undefined;
}

/** A verified JWT (src/jwt); at most one per request (several valid tokens are refused with 401). */
export interface VerifiedJwt {
  issuer: string;
  /** Empty string when the token has no `sub`. */
  subject: string;
  /** The whole payload. */
  claims: Readonly<Record<string, unknown>>;
}

export type RequestProtocol = 'http' | 'grpc' | 'tcp';

/** Raw request facts. `path` is the request target as sent (query included, maybe absolute-form). */
export interface RequestInput {
  protocol: RequestProtocol;
  method: string;
  path: string;
  /** Host header (HTTP/1) or :authority (HTTP/2), as sent. */
  host: string;
  /** Names in any case; a value array means the header was repeated. */
  headers: Record<string, string | string[]>;
  peer: PeerIdentity | null;
  sourceIp: string;
  /** Defaults to sourceIp (Portcullis never trusts X-Forwarded-For for policy). */
  remoteIp?: string;
  destinationIp?: string;
  /** The workload port the connection arrived on. */
  port: number;
  sni?: string;
  jwt: VerifiedJwt | null;
}

export interface RequestContext {
  readonly protocol: RequestProtocol;
  /** As sent (validated: an upper-case token). Empty for tcp. */
  readonly method: string;
  /** Normalized path without query or fragment: used for matching AND forwarded upstream. */
  readonly path: string;
  /** Raw query without the leading `?`; empty when none. Never used for path matching. */
  readonly query: string;
  /** Lower-cased authority including `:port` when sent (Istio `hosts` compare the full value). */
  readonly authority: string;
  /** Lower-cased host without port and without a trailing dot (PC-6). */
  readonly host: string;
  /** Lower-cased names; repeated headers joined with `,` (Istio/Envoy header-matcher contract). */
  readonly headers: Readonly<Record<string, string>>;
  readonly peer: PeerIdentity | null;
  readonly sourceIp: string;
  readonly remoteIp: string;
  readonly destinationIp: string | undefined;
  readonly port: number;
  readonly sni: string | undefined;
  readonly jwt: VerifiedJwt | null;
}

/** Why a request was refused before any policy ran (400). Stable codes shared with logs. */
export type BadRequestReason =
  | 'bad_method'
  | 'bad_path'
  | 'nul_in_path'
  | 'bad_authority'
  | 'bad_header'
  | 'encoded_slash_rejected';

export type ContextResult =
  | { ok: true; context: RequestContext }
  | { ok: false; reason: BadRequestReason; detail: string };
