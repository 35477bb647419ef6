// Owns the one intermediate representation every policy dialect lowers to (Istio, Linkerd, later
// Cilium/Calico/Kubernetes). Plain immutable data: no functions, no I/O; evaluate.ts compiles it to closures.

import type { Diagnostic } from './diagnostics.js';

export type Dialect = 'istio' | 'linkerd';

/** Which resource a rule, authorization or route came from, so every decision can name its cause. */
export interface PolicyRef {
  dialect: Dialect;
  /** Resource kind as users write it (AuthorizationPolicy, Server, ...) or `default` for built-ins. */
  kind: string;
  namespace: string;
  name: string;
}

// ---------------------------------------------------------------------------------------------------
// Leaf matchers

/** String forms shared by all dialects. `present` = any non-empty value (Istio `*`). */
export type StringMatcher =
  | { kind: 'exact'; value: string; ignoreCase?: boolean }
  | { kind: 'prefix'; value: string; ignoreCase?: boolean }
  | { kind: 'suffix'; value: string; ignoreCase?: boolean }
  | { kind: 'present' }
  /** RE2 syntax, must match the whole value. Validated (and compiled with re2) at compile time. */
  | { kind: 'regex'; pattern: string };

/** One segment of an Istio path template (`/foo/{*}/bar/{**}`). */
export type TemplateSegment = { kind: 'literal'; value: string } | { kind: 'one' } | { kind: 'many' };

export type PathMatcher =
  | StringMatcher
  /** Istio `{*}` / `{**}` URI template (Envoy uri_template semantics). */
  | { kind: 'template'; segments: TemplateSegment[]; ignoreCase?: boolean }
  /** Linkerd / Gateway API PathPrefix: segment-wise prefix, trailing slashes trimmed on both sides. */
  | { kind: 'segment-prefix'; value: string };

/** An IPv4/IPv6 address or CIDR in text form (`10.0.0.0/8`, `::1`); parsed once by the compiler. */
export type CidrText = string;

// ---------------------------------------------------------------------------------------------------
// Matcher tree: the one boolean language. Absent attributes make every positive leaf false; negation is
// `not`, so negative forms are true when the attribute is missing (Istio's absent-attribute rule).

export type Matcher =
  | { type: 'any' }
  | { type: 'none' }
  | { type: 'and'; of: Matcher[] }
  | { type: 'or'; of: Matcher[] }
  | { type: 'not'; of: Matcher }
  // --- peer (connection) ---
  /** Peer mTLS identity without the `spiffe://` scheme (`cluster.local/ns/foo/sa/bar`). False for plaintext. */
  | { type: 'peer.principal'; match: StringMatcher }
  /** True iff the peer presented a verified identity. */
  | { type: 'peer.authenticated' }
  /**
   * Linkerd identity match. `exact` entries match the peer's Linkerd name
   * (`<sa>.<ns>.serviceaccount.identity.<cp-ns>.<td>`) or, when they start with `spiffe://`, its raw
   * SPIFFE ID; `suffixes` match the Linkerd name only (`""` = any identity). See docs/linkerd.md.
   */
  | { type: 'peer.linkerd-identity'; exact: string[]; suffixes: string[] }
  /** TCP peer address (Envoy direct_remote_ip). */
  | { type: 'source.ip'; cidrs: CidrText[] }
  /** Client address as computed by the proxy; Portcullis sets it to the peer address. */
  | { type: 'remote.ip'; cidrs: CidrText[] }
  | { type: 'destination.ip'; cidrs: CidrText[] }
  /** The workload port the connection arrived on. */
  | { type: 'destination.port'; ports: number[] }
  | { type: 'connection.sni'; match: StringMatcher }
  // --- request (HTTP only) ---
  /** Case-sensitive as sent (Istio). */
  | { type: 'request.method'; match: StringMatcher }
  /**
   * Full authority including `:port`, compared case-insensitively (the compiler lower-cases). `anyPort`:
   * the host part alone (port dropped) may match too; Portcullis' secure reading for DENY hosts.
   */
  | { type: 'request.host'; match: StringMatcher; anyPort?: boolean }
  /** Normalized path without query or fragment. */
  | { type: 'request.path'; match: PathMatcher }
  /**
   * Header by lower-cased name; duplicate headers are joined with `,`. `elements` (security spec PC-8) also
   * splits that value on `,` (repeated fields and list syntax alike): `any` = the whole value or any element
   * matches (how a DENY reads it), `all` = every element matches (how an ALLOW reads it). Absent: the
   * joined value is matched as one string.
   */
  | { type: 'request.header'; name: string; match: StringMatcher; elements?: 'any' | 'all' }
  /** Query parameter by exact name; any occurrence may satisfy (Linkerd). */
  | { type: 'request.query'; name: string; match: StringMatcher }
  // --- JWT (HTTP only; false when no verified token) ---
  /** Istio requestPrincipals: policy value split at the last `/`, iss and sub matched separately. */
  | { type: 'jwt.principal'; issuer: StringMatcher; subject: StringMatcher }
  /** Claim by nested path (`['groups']`, `['a','b']`); string, or any element of a string list. */
  | { type: 'jwt.claim'; path: string[]; match: StringMatcher }
  /** Istio `experimental.envoy.filters.*` keys: no Envoy metadata exists here, so this never matches. */
  | { type: 'unsupported'; key: string };

// ---------------------------------------------------------------------------------------------------
// Istio program

export type IstioAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface IstioRule {
  /** Envoy-style id: `ns[<ns>]-policy[<name>]-rule[<i>]`. Rules are evaluated in this id's order. */
  id: string;
  policy: PolicyRef;
  /** Index of the rule inside spec.rules. */
  index: number;
  action: IstioAction;
  /** `istio.io/dry-run: "true"`: evaluated into the shadow result, never enforced. */
  dryRun: boolean;
  /** CUSTOM only: spec.provider.name. */
  provider?: string;
  /** OR(from) AND OR(to) AND AND(when), already combined. */
  match: Matcher;
}

/** Rules of one filter chain. HTTP and TCP ports get different lowerings (HTTP-only fields). */
export interface IstioChain {
  custom: IstioRule[];
  deny: IstioRule[];
  allow: IstioRule[];
  audit: IstioRule[];
  /** True when at least one enforced (not dry-run) ALLOW policy selects the workload, even with zero rules. */
  hasEnforcedAllow: boolean;
  /** True when at least one dry-run ALLOW policy selects the workload. */
  hasShadowAllow: boolean;
}

export interface IstioProgram {
  http: IstioChain;
  tcp: IstioChain;
}

// ---------------------------------------------------------------------------------------------------
// RequestAuthentication, lowered (verified by src/jwt, outside the pure core)

export interface JwtHeaderLocation {
  name: string;
  /** e.g. `Bearer `; empty string = whole value. */
  prefix: string;
}

export interface JwtProviderSpec {
  policy: PolicyRef;
  /** Empty string when omitted (allowed when jwksUri is given). */
  issuer: string;
  /** Empty = `aud` not checked. */
  audiences: string[];
  jwks: { kind: 'inline'; json: string } | { kind: 'uri'; uri: string } | { kind: 'none' };
  /** Istio default when none of fromHeaders/fromParams/fromCookies is given: Authorization Bearer + access_token. */
  fromHeaders: JwtHeaderLocation[];
  fromParams: string[];
  fromCookies: string[];
  forwardOriginalToken: boolean;
  outputPayloadToHeader: string | undefined;
  outputClaimToHeaders: { header: string; claim: string }[];
  spaceDelimitedClaims: string[];
  /** JWKS fetch timeout in ms (Istio `timeout`), default 5000. */
  timeoutMs: number;
  /** Tokens without `exp` are refused (CompileOptions.jwtRequireExpiration, minus exempted issuers). */
  requireExpiration?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Linkerd program (see ../shared/spec/linkerd.md); its authorizations reuse the Matcher tree.

export interface LinkerdAuthorization {
  /** e.g. {kind:'authorizationpolicy', name} or {kind:'default', name:'all-unauthenticated'|'probe'|'localhost'|'audit'} */
  ref: PolicyRef;
  /** Network AND authentication, as one Matcher. */
  match: Matcher;
  /** The `audit` default: admits, but the decision is a would-deny for the logs. */
  audit: boolean;
}

export interface LinkerdRouteMatch {
  path?: PathMatcher;
  method?: string;
  headers: { name: string; match: StringMatcher }[];
  queryParams: { name: string; match: StringMatcher }[];
  /** GRPCRoute: service/method exact. */
  grpc?: { service?: string; method?: string };
}

export type LinkerdFilter =
  | { type: 'RequestHeaderModifier'; set: { name: string; value: string }[]; add: { name: string; value: string }[]; remove: string[] }
  | { type: 'RequestRedirect'; scheme?: string; hostname?: string; path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; value: string }; port?: number; statusCode: number };

export interface LinkerdRouteRule {
  /** Empty = match everything (PathPrefix `/`). */
  matches: LinkerdRouteMatch[];
  filters: LinkerdFilter[];
}

export interface LinkerdRoute {
  ref: PolicyRef;
  hostnames: string[];
  rules: LinkerdRouteRule[];
  /** Authorizations targeting this route. */
  authorizations: LinkerdAuthorization[];
  /** Ordering key: creationTimestamp then name; built-in routes sort last. */
  order: number;
}

export interface LinkerdRateLimit {
  ref: PolicyRef;
  totalRps?: number;
  identityRps?: number;
  overrides: { rps: number; identities: string[] }[];
}

export interface LinkerdServer {
  /** {kind:'server', name} or {kind:'default', name:<default policy name>}. */
  ref: PolicyRef;
  protocol: 'unknown' | 'HTTP/1' | 'HTTP/2' | 'gRPC' | 'opaque' | 'TLS';
  routes: LinkerdRoute[];
  /** Server-level, Namespace-level and accessPolicy authorizations (localhost is appended by the engine). */
  authorizations: LinkerdAuthorization[];
  rateLimit?: LinkerdRateLimit;
}

export interface LinkerdProgram {
  /** Port number -> the Server (or default server) that owns it. */
  servers: Record<number, LinkerdServer>;
  /** Used for ports with no entry in `servers`. */
  defaultServer: LinkerdServer;
}

// ---------------------------------------------------------------------------------------------------
// The snapshot: everything compiled for one workload, immutable, swapped whole on reload.

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** Facts about the workload this sidecar stands beside; policies are selected against them at compile time. */
export interface WorkloadIdentity {
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccount: string;
  trustDomain: string;
  trustDomainAliases: string[];
}

export interface CompileOptions {
  workload: WorkloadIdentity;
  /** Istio meshConfig.rootNamespace, default `istio-system`. */
  rootNamespace: string;
  pathNormalization: PathNormalization;
  /** The `compatibility` setting these options were derived from (compatibility.ts); informational. */
  compatibility?: 'secure' | 'istio-exact';
  /** `%2F` / `%5C` in a path is a 400 (request parsing; kept here so check and run parse alike). */
  rejectEncodedSlashes?: boolean;
  /**
   * Hardening (security spec PC-4): the positive `paths` of Istio DENY rules match regardless of case, for
   * workloads whose router ignores case (Express does by default). Only ever widens a deny. Default false.
   */
  denyPathsIgnoreCase?: boolean;
  /**
   * Secure reading of Istio DENY `hosts`: a value without a port also matches that host on any port
   * (`admin.api` denies `Admin.Api.:8443`). Only ever widens a deny. Default false (Istio compares the
   * whole authority).
   */
  denyHostsAnyPort?: boolean;
  /**
   * Istio's default JWT locations when a jwtRule names none: `Authorization: Bearer` and the
   * `access_token` query parameter. False = the header only (tokens in URLs leak into access logs);
   * `fromParams` still enables query tokens explicitly. Default true (Istio).
   */
  jwtDefaultQueryParam?: boolean;
  /**
   * RFC 8725 practice: tokens without `exp` are refused (401). Default false (Istio accepts them).
   * `jwtExpirationOptionalIssuers` lists issuers exempted from it (a provider whose tokens never expire).
   */
  jwtRequireExpiration?: boolean;
  jwtExpirationOptionalIssuers?: string[];
  /** Names of configured CUSTOM (ext_authz) providers; none today, so a CUSTOM match denies. */
  customProviders: string[];
  linkerd: {
    /** Cluster default inbound policy, default `all-unauthenticated`. */
    defaultPolicy: string;
    /**
     * True when the operator set `defaultPolicy` (config file or --default-policy). An explicit default, like
     * the workload's `config.linkerd.io/default-inbound-policy` annotation, governs the workload even when no
     * Linkerd resource is loaded (linkerd2-proxy always has a default policy); left unset, Linkerd takes part
     * only once a Linkerd resource exists.
     */
    defaultPolicyConfigured?: boolean;
    clusterNetworks: CidrText[];
    probeNetworks: CidrText[];
    /** HTTP probe paths per port (`{8080: ['/live','/ready']}`). */
    probePaths: Record<number, string[]>;
    /** Named container ports (`{http: 8080}`). */
    portNames: Record<string, number>;
    /** Linkerd control-plane namespace used in identity names, default `linkerd`. */
    controlPlaneNamespace: string;
  };
}

export interface LoadedDocumentSummary {
  file: string;
  line: number;
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  /** Whether the document selects this workload (and so takes part in decisions). */
  applies: boolean;
}

export interface PolicySnapshot {
  /** Content hash of the inputs + options; shown on /policy and in every decision event. */
  revision: string;
  options: CompileOptions;
  /** Present iff any Istio AuthorizationPolicy selects the workload (else Istio allows). */
  istio: IstioProgram | undefined;
  /** Present iff any Linkerd document exists in the set (Linkerd then governs every port). */
  linkerd: LinkerdProgram | undefined;
  /** RequestAuthentications selecting the workload, sorted by issuer. */
  jwtProviders: JwtProviderSpec[];
  documents: LoadedDocumentSummary[];
  /** Warnings and infos (a snapshot never exists for a set with errors). */
  diagnostics: Diagnostic[];
}
