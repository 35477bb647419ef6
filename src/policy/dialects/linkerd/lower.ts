// Owns lowering a valid set of Linkerd documents to the LinkerdProgram for one workload: Server per port,
// routes, authorizations, defaults, probes, rate limits. Spec: shared/spec/linkerd.md §2, §4, §5, §7
// (policy-controller/k8s/index/src/inbound/index.rs). Broken references are warnings and never widen access.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type {
  CompileOptions, LinkerdAuthorization, LinkerdFilter, LinkerdProgram, LinkerdRateLimit, LinkerdRoute, LinkerdRouteMatch,
  LinkerdRouteRule, LinkerdServer, Matcher, PathMatcher, PolicyRef, StringMatcher,
} from '../../ir.js';
import type { DialectOutput } from '../types.js';
import { namespaceIdentitySuffix, parseIdentityEntry, serviceAccountIdentity } from './identity.js';
import { DEFAULT_POLICY_NAMES, isObject } from './schema.js';
import { authenticationKind, authorizationTarget, groupOf } from './validate.js';

type Obj = { [key: string]: JsonValue };
type ServerProtocol = LinkerdServer['protocol'];

export const DEFAULT_POLICY_ANNOTATION = 'config.linkerd.io/default-inbound-policy';
export const OPAQUE_PORTS_ANNOTATION = 'config.linkerd.io/opaque-ports';
export const REQUIRE_IDENTITY_ANNOTATION = 'config.linkerd.io/proxy-require-identity-inbound-ports';
const ALL_NETWORKS = ['0.0.0.0/0', '::/0'];
/** Built-in routes sort after every user route (they have no creationTimestamp). */
const BUILTIN_ORDER = Number.MAX_SAFE_INTEGER;

const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
const objects = (v: JsonValue | undefined): Obj[] => list(v).filter(isObject);
const strings = (v: JsonValue | undefined): string[] => list(v).filter((x): x is string => typeof x === 'string');
const specOf = (doc: PolicyDocument): Obj => (isObject(doc.body.spec) ? doc.body.spec : {});
/** kubectl's default namespace for documents that name none. */
export const namespaceOf = (doc: PolicyDocument): string => doc.metadata.namespace ?? 'default';

/** Oldest first (creationTimestamp), then name; documents without a timestamp after those with one. */
export function compareByAge(a: PolicyDocument, b: PolicyDocument): number {
  const ta = a.metadata.creationTimestamp === undefined ? undefined : Date.parse(a.metadata.creationTimestamp);
  const tb = b.metadata.creationTimestamp === undefined ? undefined : Date.parse(b.metadata.creationTimestamp);
  const ka = ta === undefined || Number.isNaN(ta) ? Infinity : ta;
  const kb = tb === undefined || Number.isNaN(tb) ? Infinity : tb;
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

export function selectorMatches(sel: JsonValue | undefined, labels: Record<string, string>): boolean {
  if (!isObject(sel)) return true;
  const ml = isObject(sel.matchLabels) ? sel.matchLabels : {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of objects(sel.matchExpressions)) {
    const key = String(e.key);
    const values = strings(e.values);
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    switch (e.operator) {
      case 'In': if (!has || !values.includes(labels[key] ?? '')) return false; break;
      case 'NotIn': if (has && values.includes(labels[key] ?? '')) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

function and(of: Matcher[]): Matcher {
  const parts = of.filter((m) => m.type !== 'any');
  if (parts.some((m) => m.type === 'none')) return { type: 'none' };
  if (parts.length === 0) return { type: 'any' };
  return parts.length === 1 ? (parts[0] as Matcher) : { type: 'and', of: parts };
}

/** Client networks as a Matcher: inside a `cidr` and outside its `except` list; any network suffices. */
export function networksMatcher(networks: { cidr: string; except: string[] }[]): Matcher {
  const plain = networks.filter((n) => n.except.length === 0).map((n) => n.cidr);
  if (ALL_NETWORKS.every((c) => plain.includes(c))) return { type: 'any' };
  const of: Matcher[] = [];
  if (plain.length > 0) of.push({ type: 'source.ip', cidrs: plain });
  for (const n of networks.filter((x) => x.except.length > 0)) {
    of.push({ type: 'and', of: [{ type: 'source.ip', cidrs: [n.cidr] }, { type: 'not', of: { type: 'source.ip', cidrs: n.except } }] });
  }
  if (of.length === 0) return { type: 'none' };
  return of.length === 1 ? (of[0] as Matcher) : { type: 'or', of };
}

function cidrsMatcher(cidrs: string[]): Matcher {
  return networksMatcher(cidrs.map((cidr) => ({ cidr, except: [] })));
}

function parseNetworks(v: JsonValue | undefined): { cidr: string; except: string[] }[] {
  return objects(v).map((n) => ({ cidr: String(n.cidr), except: strings(n.except) }));
}

const ANY_IDENTITY: Matcher = { type: 'peer.linkerd-identity', exact: [], suffixes: [''] };

function identityMatcher(entries: string[]): Matcher {
  const exact: string[] = [];
  const suffixes: string[] = [];
  for (const e of entries) {
    const p = parseIdentityEntry(e);
    if ('exact' in p) exact.push(p.exact); else suffixes.push(p.suffix);
  }
  return { type: 'peer.linkerd-identity', exact, suffixes };
}

export function isDefaultPolicyName(v: string): boolean {
  return (DEFAULT_POLICY_NAMES as readonly string[]).includes(v);
}

/** The authorization a default policy stands for (k8s/index/src/defaults.rs); none for `deny`. */
export function defaultPolicyAuthorization(name: string, namespace: string, clusterNetworks: string[]): LinkerdAuthorization | undefined {
  const ref: PolicyRef = { dialect: 'linkerd', kind: 'default', namespace, name };
  switch (name) {
    case 'all-unauthenticated': return { ref, match: { type: 'any' }, audit: false };
    case 'all-authenticated': return { ref, match: ANY_IDENTITY, audit: false };
    case 'cluster-unauthenticated': return { ref, match: cidrsMatcher(clusterNetworks), audit: false };
    case 'cluster-authenticated': return { ref, match: and([cidrsMatcher(clusterNetworks), ANY_IDENTITY]), audit: false };
    case 'audit': return { ref, match: { type: 'any' }, audit: true };
    default: return undefined;
  }
}

/** `25,443,4444-4445` as the injector reads port-list annotations; bad entries are skipped with a warning. */
function parsePortList(text: string): { ports: number[]; bad: string[] } {
  const ports: number[] = [];
  const bad: string[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m && m[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo < 1 || hi > 65535 || hi < lo) { bad.push(item); continue; }
    for (let p = lo; p <= hi; p++) ports.push(p);
  }
  return { ports, bad };
}

interface RouteDoc {
  doc: PolicyDocument;
  group: 'policy.linkerd.io' | 'gateway.networking.k8s.io';
  grpc: boolean;
}

export function lowerLinkerd(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput } {
  const diagnostics: Diagnostic[] = [];
  const applied = new Set<PolicyDocument>();
  // Gateway API routes alone do not bring Linkerd in: only policy.linkerd.io resources or a route whose
  // parent is a Linkerd Server do (then Linkerd governs every port of the workload).
  const isLinkerdDoc = (d: PolicyDocument) => d.apiVersion.startsWith('policy.linkerd.io/')
    || objects(specOf(d).parentRefs).some((p) => groupOf(p) === 'policy.linkerd.io' && String(p.kind ?? '').toLowerCase() === 'server');
  const annotatedDefault = options.workload.annotations[DEFAULT_POLICY_ANNOTATION];
  const explicitDefault = options.linkerd.defaultPolicyConfigured === true || (annotatedDefault !== undefined && isDefaultPolicyName(annotatedDefault));
  if (!explicitDefault && !docs.some(isLinkerdDoc)) return { diagnostics, output: { applied } };
  const warn = (doc: PolicyDocument, code: string, message: string, fieldPath: string, severity: 'warning' | 'info' = 'warning') =>
    diagnostics.push({ code, severity, message, origin: doc.locate(fieldPath), fieldPath });

  const workload = options.workload;
  const ns = workload.namespace;
  const cpNs = options.linkerd.controlPlaneNamespace || 'linkerd';
  const td = workload.trustDomain;
  const clusterNetworks = options.linkerd.clusterNetworks;
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind).sort(compareByAge);

  // --- Servers selecting this workload, one per port (oldest wins) -------------------------------------
  const allServers = byKind('Server');
  const ownerOfPort = new Map<number, PolicyDocument>();
  for (const doc of allServers) {
    const spec = specOf(doc);
    if (namespaceOf(doc) !== ns || spec.podSelector === undefined || !selectorMatches(spec.podSelector, workload.labels)) continue;
    const port = spec.port;
    let ports: number[] = [];
    if (typeof port === 'number') ports = [port];
    else if (typeof port === 'string') {
      const resolved = options.linkerd.portNames[port];
      if (resolved === undefined) warn(doc, 'PRT_LINKERD_PORT_NAME_UNRESOLVED', `port name "${port}" is not a named port of this workload; the Server selects no port`, 'spec.port', 'info');
      else ports = [resolved];
    }
    for (const p of ports) {
      const owner = ownerOfPort.get(p);
      if (owner) {
        warn(doc, 'PRT_LINKERD_SERVER_CONFLICT', `Server ${owner.metadata.name} (older) already selects port ${p}; this Server is ignored for it`, 'spec.port');
        continue;
      }
      ownerOfPort.set(p, doc);
      applied.add(doc);
    }
  }
  const ownedServers = new Set(ownerOfPort.values());
  const serverNamed = (namespace: string, name: string) => allServers.find((s) => namespaceOf(s) === namespace && s.metadata.name === name);

  // --- Routes attached to our Servers ------------------------------------------------------------------
  const routeDocs: RouteDoc[] = docs
    .filter((d) => d.kind === 'HTTPRoute' || d.kind === 'GRPCRoute')
    .sort(compareByAge)
    .map((doc) => ({ doc, group: doc.apiVersion.startsWith('policy.linkerd.io/') ? 'policy.linkerd.io' : 'gateway.networking.k8s.io', grpc: doc.kind === 'GRPCRoute' }));
  const routesOfServer = new Map<PolicyDocument, RouteDoc[]>();
  const usableRoutes = new Set<RouteDoc>();
  for (const rd of routeDocs) {
    const { doc } = rd;
    const spec = specOf(doc);
    const serverParents = objects(spec.parentRefs)
      .map((p, i) => ({ p, i }))
      .filter(({ p }) => groupOf(p) === 'policy.linkerd.io' && String(p.kind ?? '').toLowerCase() === 'server');
    if (serverParents.length === 0) continue;
    const invalid = serverParents.find(({ p }) => (p.namespace !== undefined && p.namespace !== namespaceOf(doc)) || p.port !== undefined || p.sectionName !== undefined);
    if (invalid) {
      warn(doc, 'PRT_LINKERD_ROUTE_INVALID_PARENT', 'a Server parentRef must be in the route\'s namespace and must not set port or sectionName; the route is ignored', `spec.parentRefs[${invalid.i}]`);
      continue;
    }
    const unsupported = routeUnsupportedFeature(spec, rd.grpc);
    if (unsupported) {
      warn(doc, 'PRT_LINKERD_ROUTE_UNSUPPORTED', `${unsupported.what}; Linkerd rejects the route, so it is ignored`, unsupported.at);
      continue;
    }
    usableRoutes.add(rd);
    for (const { p, i } of serverParents) {
      const server = serverNamed(namespaceOf(doc), String(p.name));
      if (!server) {
        warn(doc, 'PRT_LINKERD_REF_MISSING', `parent Server ${namespaceOf(doc)}/${String(p.name)} does not exist (NoMatchingParent); the route is not used for it`, `spec.parentRefs[${i}]`);
        continue;
      }
      if (!ownedServers.has(server)) continue;
      const protocol = (specOf(server).proxyProtocol as ServerProtocol | undefined) ?? 'unknown';
      if (rd.grpc !== (protocol === 'gRPC')) {
        warn(doc, 'PRT_LINKERD_ROUTE_PROTOCOL', rd.grpc
          ? `Server ${server.metadata.name} does not use proxyProtocol gRPC, so this GRPCRoute is not used`
          : `Server ${server.metadata.name} uses proxyProtocol gRPC, so only GRPCRoutes apply to it; this HTTPRoute is not used`, `spec.parentRefs[${i}]`);
        continue;
      }
      const attached = routesOfServer.get(server) ?? [];
      if (!attached.includes(rd)) attached.push(rd);
      routesOfServer.set(server, attached);
      applied.add(doc);
    }
  }

  // --- Authentications -----------------------------------------------------------------------------------
  const meshTls = new Map(byKind('MeshTLSAuthentication').map((d) => [`${namespaceOf(d)}/${d.metadata.name}`, d]));
  const networkAuths = new Map(byKind('NetworkAuthentication').map((d) => [`${namespaceOf(d)}/${d.metadata.name}`, d]));

  const meshTlsMatcher = (doc: PolicyDocument): Matcher => {
    const spec = specOf(doc);
    if (spec.identities !== undefined) return identityMatcher(strings(spec.identities));
    const exact: string[] = [];
    const suffixes: string[] = [];
    for (const ref of objects(spec.identityRefs)) {
      const kind = String(ref.kind).toLowerCase();
      const name = String(ref.name);
      // A ServiceAccount named `*` is a literal name, not a wildcard (meshtls_authentication.rs).
      if (kind === 'serviceaccount') exact.push(serviceAccountIdentity(name, typeof ref.namespace === 'string' ? ref.namespace : namespaceOf(doc), cpNs, td));
      else if (kind === 'namespace') suffixes.push(namespaceIdentitySuffix(name, cpNs, td));
    }
    return { type: 'peer.linkerd-identity', exact, suffixes };
  };

  // --- Authorization lists -------------------------------------------------------------------------------
  const serverAuthz = new Map<PolicyDocument, LinkerdAuthorization[]>();
  const routeAuthz = new Map<PolicyDocument, LinkerdAuthorization[]>();
  const namespaceAuthz: LinkerdAuthorization[] = [];
  const push = <K>(map: Map<K, LinkerdAuthorization[]>, key: K, a: LinkerdAuthorization) => {
    const l = map.get(key) ?? [];
    l.push(a);
    map.set(key, l);
  };

  for (const doc of byKind('AuthorizationPolicy')) {
    const spec = specOf(doc);
    const policyNs = namespaceOf(doc);
    const parts: Matcher[] = [];
    let broken = false;
    const usedAuthn: PolicyDocument[] = [];
    objects(spec.requiredAuthenticationRefs).forEach((ref, i) => {
      const kind = authenticationKind(ref);
      const refNs = typeof ref.namespace === 'string' ? ref.namespace : policyNs;
      const name = String(ref.name);
      if (kind === 'ServiceAccount') {
        parts.push({ type: 'peer.linkerd-identity', exact: [serviceAccountIdentity(name, refNs, cpNs, td)], suffixes: [] });
        return;
      }
      const target = kind === 'MeshTLSAuthentication' ? meshTls.get(`${refNs}/${name}`) : networkAuths.get(`${refNs}/${name}`);
      if (!target) {
        broken = true;
        warn(doc, 'PRT_LINKERD_REF_MISSING', `${kind ?? 'authentication'} ${refNs}/${name} does not exist; Linkerd ignores this AuthorizationPolicy`, `spec.requiredAuthenticationRefs[${i}]`);
        return;
      }
      usedAuthn.push(target);
      parts.push(kind === 'MeshTLSAuthentication' ? meshTlsMatcher(target) : networksMatcher(parseNetworks(specOf(target).networks)));
    });
    if (broken) continue;
    const authz: LinkerdAuthorization = { ref: { dialect: 'linkerd', kind: 'AuthorizationPolicy', namespace: policyNs, name: doc.metadata.name }, match: and(parts), audit: false };
    const target = isObject(spec.targetRef) ? spec.targetRef : {};
    const targetKind = authorizationTarget(target);
    const targetName = String(target.name);
    let applies = false;
    if (targetKind === 'Server') {
      const server = serverNamed(policyNs, targetName);
      if (!server) warn(doc, 'PRT_LINKERD_REF_MISSING', `target Server ${policyNs}/${targetName} does not exist; the policy authorizes nothing`, 'spec.targetRef');
      else if (ownedServers.has(server)) { push(serverAuthz, server, authz); applies = true; }
    } else if (targetKind === 'Namespace') {
      if (policyNs === ns) { namespaceAuthz.push(authz); applies = ownedServers.size > 0; }
    } else if (targetKind) {
      const wantGrpc = targetKind === 'GRPCRoute';
      const wantGroup = targetKind === 'HTTPRoute:policy.linkerd.io' ? 'policy.linkerd.io' : 'gateway.networking.k8s.io';
      const route = routeDocs.find((r) => r.grpc === wantGrpc && r.group === wantGroup && namespaceOf(r.doc) === policyNs && r.doc.metadata.name === targetName);
      if (!route) warn(doc, 'PRT_LINKERD_REF_MISSING', `target ${wantGrpc ? 'GRPCRoute' : 'HTTPRoute'} ${policyNs}/${targetName} (${wantGroup}) does not exist; the policy authorizes nothing`, 'spec.targetRef');
      else if (usableRoutes.has(route)) {
        push(routeAuthz, route.doc, authz);
        applies = [...routesOfServer.values()].some((l) => l.includes(route));
      }
    }
    if (applies) { applied.add(doc); for (const a of usedAuthn) applied.add(a); }
  }

  for (const doc of byKind('ServerAuthorization')) {
    const spec = specOf(doc);
    const server = isObject(spec.server) ? spec.server : {};
    const client = isObject(spec.client) ? spec.client : {};
    const docNs = namespaceOf(doc);
    let targets: PolicyDocument[];
    if (typeof server.name === 'string') {
      const s = serverNamed(docNs, server.name);
      if (!s) { warn(doc, 'PRT_LINKERD_REF_MISSING', `Server ${docNs}/${server.name} does not exist; the ServerAuthorization authorizes nothing`, 'spec.server.name'); continue; }
      targets = [s];
    } else {
      targets = allServers.filter((s) => namespaceOf(s) === docNs && selectorMatches(server.selector, s.metadata.labels));
    }
    const networks = parseNetworks(client.networks);
    // Empty networks mean the cluster networks, not everywhere (grpc/src/inbound.rs `to_authz`).
    const net = networks.length > 0 ? networksMatcher(networks) : cidrsMatcher(clusterNetworks);
    let identity: Matcher = { type: 'any' };
    const mesh = isObject(client.meshTLS) ? client.meshTLS : undefined;
    if (mesh) {
      if (mesh.unauthenticatedTLS === true) identity = { type: 'peer.authenticated' };
      else if (mesh.identities !== undefined) identity = identityMatcher(strings(mesh.identities));
      else identity = { type: 'peer.linkerd-identity', exact: objects(mesh.serviceAccounts).map((sa) => serviceAccountIdentity(String(sa.name), typeof sa.namespace === 'string' ? sa.namespace : docNs, cpNs, td)), suffixes: [] };
    }
    const authz: LinkerdAuthorization = { ref: { dialect: 'linkerd', kind: 'ServerAuthorization', namespace: docNs, name: doc.metadata.name }, match: and([net, identity]), audit: false };
    for (const s of targets) if (ownedServers.has(s)) { push(serverAuthz, s, authz); applied.add(doc); }
  }

  // --- Rate limits: one per Server, oldest wins ------------------------------------------------------------
  const rateLimitOf = new Map<PolicyDocument, LinkerdRateLimit>();
  for (const doc of byKind('HTTPLocalRateLimitPolicy')) {
    const spec = specOf(doc);
    const target = isObject(spec.targetRef) ? spec.targetRef : {};
    const server = serverNamed(namespaceOf(doc), String(target.name));
    if (!server) { warn(doc, 'PRT_LINKERD_REF_MISSING', `target Server ${namespaceOf(doc)}/${String(target.name)} does not exist (NoMatchingTarget)`, 'spec.targetRef'); continue; }
    if (!ownedServers.has(server)) continue;
    if (rateLimitOf.has(server)) { warn(doc, 'PRT_LINKERD_RATELIMIT_CONFLICT', `Server ${server.metadata.name} already has an older HTTPLocalRateLimitPolicy (RateLimitReasonAlreadyExists); this one is ignored`, 'spec.targetRef'); continue; }
    const rps = (v: JsonValue | undefined) => (isObject(v) && typeof v.requestsPerSecond === 'number' ? v.requestsPerSecond : undefined);
    rateLimitOf.set(server, {
      ref: { dialect: 'linkerd', kind: 'HTTPLocalRateLimitPolicy', namespace: namespaceOf(doc), name: doc.metadata.name },
      totalRps: rps(spec.total),
      identityRps: rps(spec.identity),
      overrides: objects(spec.overrides).map((o) => ({
        rps: Number(o.requestsPerSecond),
        identities: objects(o.clientRefs).map((c) => serviceAccountIdentity(String(c.name), typeof c.namespace === 'string' ? c.namespace : namespaceOf(doc), cpNs, td)),
      })),
    });
    applied.add(doc);
  }

  // --- Routes to IR ----------------------------------------------------------------------------------------
  const routeOrder = new Map(routeDocs.map((r, i) => [r, i]));
  const defaultRouteRef = (name: string): PolicyRef => ({ dialect: 'linkerd', kind: 'default', namespace: ns, name });
  const defaultHttpRoute: LinkerdRoute = { ref: defaultRouteRef('default'), hostnames: [], rules: [{ matches: [], filters: [] }], authorizations: [], order: BUILTIN_ORDER };
  const defaultGrpcRoute: LinkerdRoute = { ref: defaultRouteRef('default'), hostnames: [], rules: [{ matches: [{ grpc: {}, headers: [], queryParams: [] }], filters: [] }], authorizations: [], order: BUILTIN_ORDER };
  const probeNetworks = options.linkerd.probeNetworks;
  const probeRoute = (port: number): LinkerdRoute | undefined => {
    const paths = options.linkerd.probePaths[port] ?? [];
    if (paths.length === 0 || probeNetworks.length === 0) return undefined;
    return {
      ref: defaultRouteRef('probe'), hostnames: [],
      rules: [{ matches: paths.map((p) => ({ path: { kind: 'exact', value: p }, method: 'GET', headers: [], queryParams: [] })), filters: [] }],
      authorizations: [{ ref: defaultRouteRef('probe'), match: cidrsMatcher(probeNetworks), audit: false }],
      order: BUILTIN_ORDER - 1,
    };
  };
  const builtinRoutes = (port: number, protocol: ServerProtocol): LinkerdRoute[] => {
    if (protocol === 'gRPC') return [defaultGrpcRoute];
    const probe = probeRoute(port);
    return probe ? [probe, defaultHttpRoute] : [defaultHttpRoute];
  };
  const userRoute = (rd: RouteDoc): LinkerdRoute => {
    const spec = specOf(rd.doc);
    return {
      ref: { dialect: 'linkerd', kind: rd.doc.kind, namespace: namespaceOf(rd.doc), name: rd.doc.metadata.name },
      hostnames: strings(spec.hostnames).map((h) => h.toLowerCase()),
      // The HTTPRoute CRD defaults an absent `rules` to one rule matching PathPrefix `/` (what the API
      // server would store); an explicit empty list matches nothing.
      rules: spec.rules === undefined && !rd.grpc ? [{ matches: [], filters: [] }] : objects(spec.rules).map((r) => lowerRule(r, rd.grpc)),
      authorizations: routeAuthz.get(rd.doc) ?? [],
      order: routeOrder.get(rd) ?? 0,
    };
  };

  // --- Default policy for this workload --------------------------------------------------------------------
  let defaultPolicy = options.linkerd.defaultPolicy || 'all-unauthenticated';
  const annotated = workload.annotations[DEFAULT_POLICY_ANNOTATION];
  // Workload facts come from options, not from a document: their diagnostics point at the workload.
  const workloadWarn = (code: string, message: string, fieldPath: string) =>
    diagnostics.push({ code, severity: 'warning', message, origin: { file: '<workload>', line: 0, column: 0 }, fieldPath });
  if (!isDefaultPolicyName(defaultPolicy)) {
    workloadWarn('PRT_LINKERD_BAD_DEFAULT_POLICY', `default policy "${defaultPolicy}" is not one of ${DEFAULT_POLICY_NAMES.join(', ')}; using deny`, 'defaultPolicy');
    defaultPolicy = 'deny';
  }
  if (annotated !== undefined) {
    if (isDefaultPolicyName(annotated)) defaultPolicy = annotated;
    else workloadWarn('PRT_LINKERD_BAD_DEFAULT_POLICY', `workload annotation ${DEFAULT_POLICY_ANNOTATION}="${annotated}" is not a default policy name; the cluster default ${defaultPolicy} applies`, `annotations[${DEFAULT_POLICY_ANNOTATION}]`);
  }
  const opaque = parsePortList(workload.annotations[OPAQUE_PORTS_ANNOTATION] ?? '');
  const requireId = parsePortList(workload.annotations[REQUIRE_IDENTITY_ANNOTATION] ?? '');
  for (const bad of opaque.bad) workloadWarn('PRT_LINKERD_BAD_PORT_LIST', `"${bad}" is not a port or range; ignored`, `annotations[${OPAQUE_PORTS_ANNOTATION}]`);
  for (const bad of requireId.bad) workloadWarn('PRT_LINKERD_BAD_PORT_LIST', `"${bad}" is not a port or range; ignored`, `annotations[${REQUIRE_IDENTITY_ANNOTATION}]`);

  const opaquePorts = new Set(opaque.ports);
  const requireIdPorts = new Set(requireId.ports);
  // Ports that differ only by number share one default server (a `1-65535` annotation stays cheap).
  const defaultServers = new Map<string, LinkerdServer>();
  const defaultServer = (port: number | undefined): LinkerdServer => {
    let name = defaultPolicy;
    if (port !== undefined && requireIdPorts.has(port)) {
      if (name === 'all-unauthenticated') name = 'all-authenticated';
      else if (name === 'cluster-unauthenticated') name = 'cluster-authenticated';
    }
    const protocol: ServerProtocol = port !== undefined && opaquePorts.has(port) ? 'opaque' : 'unknown';
    const probePaths = port === undefined ? [] : options.linkerd.probePaths[port] ?? [];
    const key = probePaths.length === 0 ? `${name}|${protocol}` : `${name}|${protocol}|${port ?? ''}`;
    let server = defaultServers.get(key);
    if (!server) {
      const authz = defaultPolicyAuthorization(name, ns, clusterNetworks);
      server = {
        ref: { dialect: 'linkerd', kind: 'default', namespace: ns, name },
        protocol,
        routes: port === undefined ? [defaultHttpRoute] : builtinRoutes(port, protocol),
        authorizations: authz ? [authz] : [],
      };
      defaultServers.set(key, server);
    }
    return server;
  };

  // --- Assemble -----------------------------------------------------------------------------------------------
  const servers: Record<number, LinkerdServer> = {};
  for (const [port, doc] of ownerOfPort) {
    const spec = specOf(doc);
    const protocol = (spec.proxyProtocol as ServerProtocol | undefined) ?? 'unknown';
    const attached = routesOfServer.get(doc) ?? [];
    // With at least one route the user's routes replace the default and probe routes (index.rs `http_routes`).
    const routes = attached.length > 0 ? attached.map(userRoute) : builtinRoutes(port, protocol);
    const access = typeof spec.accessPolicy === 'string' ? defaultPolicyAuthorization(spec.accessPolicy, ns, clusterNetworks) : undefined;
    const authorizations = [...(serverAuthz.get(doc) ?? []), ...namespaceAuthz, ...(access ? [access] : [])];
    const server: LinkerdServer = {
      ref: { dialect: 'linkerd', kind: 'Server', namespace: ns, name: doc.metadata.name },
      protocol, routes, authorizations,
    };
    const rl = rateLimitOf.get(doc);
    if (rl) server.rateLimit = rl;
    servers[port] = server;
  }
  const specialPorts = new Set<number>([
    ...Object.keys(options.linkerd.probePaths).map(Number), ...opaque.ports, ...requireId.ports,
  ]);
  for (const port of specialPorts) if (servers[port] === undefined && Number.isInteger(port)) servers[port] = defaultServer(port);
  const program: LinkerdProgram = { servers, defaultServer: defaultServer(undefined) };
  return { diagnostics, output: { linkerd: program, applied } };
}

function routeUnsupportedFeature(spec: Obj, grpc: boolean): { what: string; at: string } | undefined {
  const rules = objects(spec.rules);
  for (let r = 0; r < rules.length; r++) {
    const rule = rules[r] as Obj;
    const filters = objects(rule.filters);
    for (let f = 0; f < filters.length; f++) {
      const type = String((filters[f] as Obj).type);
      if (!['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect'].includes(type)) {
        return { what: `filter ${type} is not supported on inbound routes`, at: `spec.rules[${r}].filters[${f}]` };
      }
    }
    if (grpc) {
      const matches = objects(rule.matches);
      for (let m = 0; m < matches.length; m++) {
        const method = (matches[m] as Obj).method;
        if (isObject(method) && method.type === 'RegularExpression') return { what: 'GRPCRoute method type RegularExpression is not supported', at: `spec.rules[${r}].matches[${m}].method.type` };
      }
    }
  }
  return undefined;
}

function stringMatch(m: Obj): StringMatcher {
  const value = String(m.value);
  return m.type === 'RegularExpression' ? { kind: 'regex', pattern: value } : { kind: 'exact', value };
}

function lowerRule(rule: Obj, grpc: boolean): LinkerdRouteRule {
  const matches: LinkerdRouteMatch[] = objects(rule.matches).map((m) => {
    const headers = objects(m.headers).map((h) => ({ name: String(h.name).toLowerCase(), match: stringMatch(h) }));
    if (grpc) {
      const method = isObject(m.method) ? m.method : {};
      const g: { service?: string; method?: string } = {};
      if (typeof method.service === 'string') g.service = method.service;
      if (typeof method.method === 'string') g.method = method.method;
      return { grpc: g, headers, queryParams: [] };
    }
    const out: LinkerdRouteMatch = { headers, queryParams: objects(m.queryParams).map((q) => ({ name: String(q.name), match: stringMatch(q) })) };
    const p = isObject(m.path) ? m.path : { type: 'PathPrefix', value: '/' };
    const type = typeof p.type === 'string' ? p.type : 'PathPrefix';
    const value = typeof p.value === 'string' ? p.value : '/';
    const path: PathMatcher = type === 'Exact' ? { kind: 'exact', value } : type === 'RegularExpression' ? { kind: 'regex', pattern: value } : { kind: 'segment-prefix', value };
    out.path = path;
    if (typeof m.method === 'string') out.method = m.method;
    return out;
  });
  const filters: LinkerdFilter[] = [];
  for (const f of objects(rule.filters)) {
    if (f.type === 'RequestHeaderModifier' && isObject(f.requestHeaderModifier)) {
      const hm = f.requestHeaderModifier;
      const kv = (v: JsonValue | undefined) => objects(v).map((x) => ({ name: String(x.name), value: String(x.value) }));
      filters.push({ type: 'RequestHeaderModifier', set: kv(hm.set), add: kv(hm.add), remove: strings(hm.remove) });
    } else if (f.type === 'RequestRedirect' && isObject(f.requestRedirect)) {
      const rr = f.requestRedirect;
      const redirect: Extract<LinkerdFilter, { type: 'RequestRedirect' }> = { type: 'RequestRedirect', statusCode: typeof rr.statusCode === 'number' ? rr.statusCode : 302 };
      if (typeof rr.scheme === 'string') redirect.scheme = rr.scheme;
      if (typeof rr.hostname === 'string') redirect.hostname = rr.hostname;
      if (typeof rr.port === 'number') redirect.port = rr.port;
      if (isObject(rr.path)) {
        const full = rr.path.type === 'ReplaceFullPath';
        redirect.path = { type: full ? 'ReplaceFullPath' : 'ReplacePrefixMatch', value: String(full ? rr.path.replaceFullPath : rr.path.replacePrefixMatch) };
      }
      filters.push(redirect);
    }
    // ResponseHeaderModifier is parsed but dropped inbound (grpc/src/inbound/http.rs `convert_http_filter`).
  }
  return { matches, filters };
}
