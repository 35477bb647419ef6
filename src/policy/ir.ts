// Owns the one intermediate representation every policy dialect lowers to: a PolicyProgram, a list of tiers
// walked in order, each a dialect's composition written as data. Plain immutable data, no functions, no I/O;
// program.ts compiles it once per snapshot (snapshot.ts) and evaluate.ts walks it (docs/engine.md).

import type { RequestProtocol } from './context-types.js';

/** A dialect's name as it appears in decisions (`istio`, `linkerd`, ...); one per folder of dialects/. */
export type Dialect = string;

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
   * The peer's identity as a DNS-style name, rendered from a SPIFFE ID `spiffe://<td>/ns/<ns>/sa/<sa>` by
   * `template` (`{sa}`, `{ns}`, `{td}` placeholders; other ID shapes have no name). `exact` entries match the
   * name or, when they start with `spiffe://`, the raw SPIFFE ID; `suffixes` match the name label-wise
   * (`""` = any named peer). Dialects that name workloads by DNS (Linkerd) lower to it.
   */
  | { type: 'peer.name'; template: string; exact: string[]; suffixes: string[] }
  /**
   * A label-based peer selector answered by the peer registry (CompileOptions.peers; built with peers.ts
   * `peersWhere`): true when the verified peer's full SPIFFE ID is in `spiffeIds`, or when that ID is not in
   * the registry and `unknown` is true (a deny's pessimistic reading). False for plaintext. `describe` is
   * what explain prints (`labels app=web (registry)`).
   */
  | { type: 'peer.registered'; spiffeIds: string[]; unknown: boolean; describe: string }
  /**
   * A verified peer whose SPIFFE ID is exactly `spiffe://<td>/ns/<ns>/sa/<sa>` with `td` in `trustDomains`
   * (a pod of this cluster); `namespaces` and `serviceAccounts`, when given, must hold its namespace and
   * service account. Namespace and service-account selectors of the network-policy dialects read it (Cilium's
   * implicit namespace scoping among them): set lookups on the parsed ID, no regex per request.
   */
  | { type: 'peer.namespace'; trustDomains: string[]; namespaces?: string[]; serviceAccounts?: string[] }
  /** TCP peer address (Envoy direct_remote_ip). */
  | { type: 'source.ip'; cidrs: CidrText[] }
  /** Client address as computed by the proxy; Portcullis sets it to the peer address. */
  | { type: 'remote.ip'; cidrs: CidrText[] }
  | { type: 'destination.ip'; cidrs: CidrText[] }
  /** The workload port the connection arrived on. */
  | { type: 'destination.port'; ports: number[] }
  /** The workload port lies in `from`..`to`, both inclusive (NetworkPolicy endPort, port ranges of CNI dialects). */
  | { type: 'destination.portRange'; from: number; to: number }
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
// The program: tiers of ordered rules. See docs/engine.md for how each dialect's composition maps onto it.

/**
 * What a matching rule does. `allow`/`deny` end the tier; `custom` denies on behalf of an external
 * authorizer and ends the whole evaluation; `pass` ends the tier without a verdict (the next tier of the
 * group decides); `log` marks the decision and evaluation continues (Istio AUDIT, Calico Log); `audit`
 * admits as a would-deny, but only when no allow or deny rule of the tier matches (Linkerd `audit`).
 */
export type RuleAction = 'allow' | 'deny' | 'pass' | 'log' | 'audit' | 'custom';

/**
 * One edit of the forwarded request's headers (name lower-cased): `add` appends a value, `set` replaces every
 * value, `remove` drops the header. Cilium headerMatches ADD / REPLACE / DELETE lower to them.
 */
export type HeaderEdit = { op: 'add' | 'set'; name: string; value: string } | { op: 'remove'; name: string };

export interface TierRule {
  /** Stable name shown in decisions and explain (`ns[..]-policy[..]-rule[0]`, `authorizationpolicy/web`). */
  id: string;
  policy: PolicyRef;
  action: RuleAction;
  match: Matcher;
  /** The decision's reason code when this rule decides (`deny_policy_matched`, `authorized`, ...). */
  reason: string;
  /** Which decision field names the rule: `rule` (Istio) or `authorization` (Linkerd; `rule` is the route). */
  namedAs: 'rule' | 'authorization';
  /** `custom`: the external authorizer (Istio CUSTOM provider). */
  provider?: string;
  /**
   * `log` rules only: the header edit this rule makes when it matches. Unlike a plain mark, every matching edit
   * rule before the tier's decision applies, in rule order, when the tier admits the request (Cilium runs the
   * header actions of every matching HTTP rule).
   */
  edit?: HeaderEdit;
}

/** What a scope concludes when no ending rule matches. `pass` = no opinion: the next tier of the group judges. */
export interface TierDefault {
  verdict: 'allow' | 'deny' | 'pass';
  reason: string;
  /** Named in the decision (a Linkerd Server for its default deny), or null. */
  policy: PolicyRef | null;
}

/**
 * Dry-run rules: evaluated into the decision's shadow result, never enforced (Istio `istio.io/dry-run`; Calico staged
 * policies, whose whole tier walk is written out as one first-match list).
 */
export interface ShadowRules {
  /** allow/deny rules, first match wins. */
  rules: TierRule[];
  otherwise: { verdict: 'allow' | 'deny'; action: 'ALLOW' | 'DENY' | 'STAGED' };
}

/** One match of a route rule: all given fields must hold (Gateway API HTTPRouteMatch / GRPCRouteMatch). */
export interface RouteMatch {
  path?: PathMatcher;
  method?: string;
  headers: { name: string; match: StringMatcher }[];
  queryParams: { name: string; match: StringMatcher }[];
  /** GRPCRoute: service/method exact. */
  grpc?: { service?: string; method?: string };
}

/** Gateway API route filters that act on an admitted request. */
export type RouteFilter =
  | { type: 'RequestHeaderModifier'; set: { name: string; value: string }[]; add: { name: string; value: string }[]; remove: string[] }
  | { type: 'RequestRedirect'; scheme?: string; hostname?: string; path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; value: string }; port?: number; statusCode: number };

export interface RouteRule {
  /** Empty = match everything (PathPrefix `/`, or any gRPC method). */
  matches: RouteMatch[];
  filters: RouteFilter[];
}

/** A route of a scope's route table; the best match by Gateway API precedence is selected. */
export interface Route {
  ref: PolicyRef;
  /** Named as the decision's `rule` (`httproute/items`, `default`). */
  label: string;
  hostnames: string[];
  rules: RouteRule[];
  /** Rules checked before the scope's own (route-level authorizations). */
  authorizations: TierRule[];
  /** Precedence tie-break: lower first (creationTimestamp, then name; built-in routes last). */
  order: number;
}

/** A local rate limit applied after an admitted, routed request (Linkerd HTTPLocalRateLimitPolicy). */
export interface RateLimit {
  ref: PolicyRef;
  totalRps?: number;
  identityRps?: number;
  /** First override whose matcher holds for the peer replaces the per-identity limit. */
  overrides: { rps: number; match: Matcher }[];
}

/** What one tier applies to the requests of one destination port. */
export interface TierScope {
  /** The resource the scope stands for (a Linkerd Server or default server), or null. */
  ref: PolicyRef | null;
  /** Route table: null = no routing (connection-level); else the best route, and none = not found (404). */
  routes: Route[] | null;
  /** A non-HTTP connection on a scope that only speaks HTTP is refused with this reason; undefined = judged. */
  refuseConnections?: string;
  /** In order, after the selected route's authorizations. */
  rules: TierRule[];
  otherwise: TierDefault;
  shadow: ShadowRules | null;
  rateLimit: RateLimit | null;
}

export interface PolicyTier {
  dialect: Dialect;
  /** Shown by explain (`http`, `tcp`, `inbound`, ...). */
  name: string;
  /**
   * Consecutive tiers of one group form one dialect's composition: an allow ends the group, a pass goes
   * to the group's next tier, a deny ends the program. Different groups compose as defense in depth:
   * every group must allow.
   */
  group: string;
  /** Request protocols this tier judges; other requests skip it. */
  protocols: RequestProtocol[];
  /** Scope per destination port; `anyPort` for the rest. */
  ports: Record<number, TierScope>;
  anyPort: TierScope;
}

export interface PolicyProgram {
  tiers: PolicyTier[];
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
// The snapshot: everything compiled for one workload, immutable, swapped whole on reload.

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** One pod running as a SPIFFE identity: the facts label-based peer selectors read (peers.ts, cni-dialects.md §5). */
export interface PeerFacts {
  /** Full SPIFFE ID, `spiffe://cluster.local/ns/shop/sa/web`. */
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  namespaceLabels: Record<string, string>;
  serviceAccountLabels: Record<string, string>;
  ips: string[];
}

/** SPIFFE ID -> its pods (several pods may share an identity, with different labels). Immutable. */
export interface PeerRegistry {
  readonly byId: ReadonlyMap<string, readonly PeerFacts[]>;
}

/** Facts about the workload this sidecar stands beside; policies are selected against them at compile time. */
export interface WorkloadIdentity {
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccount: string;
  trustDomain: string;
  trustDomainAliases: string[];
  /** Labels of the workload's namespace (`--namespace-labels`), for namespace selectors on the subject. */
  namespaceLabels?: Record<string, string>;
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
  /**
   * Peer registry: SPIFFE ID -> pods with their labels, read by label-based peer selectors (peers.ts).
   * Absent = empty: every label-based allow fails closed. A registry change recompiles the snapshot.
   */
  peers?: PeerRegistry;
  /** Cilium agent settings: `policyEnforcement` default (a selecting policy isolates), always (every pod), never. */
  cilium?: { policyEnforcement?: 'default' | 'always' | 'never' };
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
