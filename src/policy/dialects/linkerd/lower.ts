// Owns lowering a valid set of Linkerd documents for one workload, in named phases: Servers per port, routes,
// authorizations, rate limits, the default policy, assembly; tiers.ts writes the result as a tier. Spec:
// shared/spec/linkerd.md §2, §4, §5, §7 (policy-controller/k8s/index/src/inbound/index.rs). Broken references
// are warnings and never widen access.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions, Matcher, PathMatcher, PolicyRef, RouteFilter, RouteMatch, RouteRule, StringMatcher } from '../../ir.js';
import { isObject } from '../../schema.js';
import { selectorMatches } from '../../selector.js';
import type { DialectOutput } from '../types.js';
import { identityMatcher as namesMatcher, namespaceIdentitySuffix, parseIdentityEntry, serviceAccountIdentity } from './identity.js';
import { linkerdTier } from './tiers.js';
import type { LinkerdAuthorization, LinkerdProgram, LinkerdRateLimit, LinkerdRoute, LinkerdServer } from './types.js';
import { DEFAULT_POLICY_NAMES } from './schema.js';
import { authenticationKind, authorizationTarget, groupOf } from './validate.js';
import { Code } from '../../../codes.js';

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

function identityMatcher(entries: string[], cpNs: string): Matcher {
  const exact: string[] = [];
  const suffixes: string[] = [];
  for (const e of entries) {
    const p = parseIdentityEntry(e);
    if ('exact' in p) exact.push(p.exact); else suffixes.push(p.suffix);
  }
  return namesMatcher(exact, suffixes, cpNs);
}

export function isDefaultPolicyName(v: string): boolean {
  return (DEFAULT_POLICY_NAMES as readonly string[]).includes(v);
}

/** The authorization a default policy stands for (k8s/index/src/defaults.rs); none for `deny`. */
export function defaultPolicyAuthorization(name: string, namespace: string, clusterNetworks: string[], cpNs: string): LinkerdAuthorization | undefined {
  const ref: PolicyRef = { dialect: 'linkerd', kind: 'default', namespace, name };
  const ANY_IDENTITY = namesMatcher([], [''], cpNs);
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

/** Everything the phases share: the inputs, what each phase found, and the diagnostics. */
interface Lowering {
  docs: PolicyDocument[];
  options: CompileOptions;
  diagnostics: Diagnostic[];
  applied: Set<PolicyDocument>;
  ns: string;
  cpNs: string;
  td: string;
  byKind(kind: string): PolicyDocument[];
  warn(doc: PolicyDocument, code: string, message: string, fieldPath: string, severity?: 'warning' | 'info'): void;
  // --- found by the phases, in order ---
  allServers: PolicyDocument[];
  ownerOfPort: Map<number, PolicyDocument>;
  ownedServers: Set<PolicyDocument>;
  routeDocs: RouteDoc[];
  routesOfServer: Map<PolicyDocument, RouteDoc[]>;
  usableRoutes: Set<RouteDoc>;
  serverAuthz: Map<PolicyDocument, LinkerdAuthorization[]>;
  routeAuthz: Map<PolicyDocument, LinkerdAuthorization[]>;
  namespaceAuthz: LinkerdAuthorization[];
  rateLimitOf: Map<PolicyDocument, LinkerdRateLimit>;
}

/** The dialect's contract: the workload's Servers, routes and authorizations as one tier. */
export function lowerLinkerd(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput } {
  const l = lowerLinkerdDocuments(docs, options);
  const tiers = l.linkerd ? [linkerdTier(l.linkerd, options.workload.namespace, options.linkerd.controlPlaneNamespace || 'linkerd')] : [];
  return { diagnostics: l.diagnostics, output: { tiers, applied: l.applied } };
}

export function lowerLinkerdDocuments(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; linkerd: LinkerdProgram | undefined; applied: Set<PolicyDocument> } {
  const diagnostics: Diagnostic[] = [];
  const applied = new Set<PolicyDocument>();
  if (!governs(docs, options)) return { diagnostics, linkerd: undefined, applied };
  const l: Lowering = {
    docs, options, diagnostics, applied,
    ns: options.workload.namespace,
    cpNs: options.linkerd.controlPlaneNamespace || 'linkerd',
    td: options.workload.trustDomain,
    byKind: (kind) => docs.filter((d) => d.kind === kind).sort(compareByAge),
    warn: (doc, code, message, fieldPath, severity = 'warning') => diagnostics.push({ code, severity, message, origin: doc.locate(fieldPath), fieldPath }),
    allServers: [], ownerOfPort: new Map(), ownedServers: new Set(), routeDocs: [], routesOfServer: new Map(), usableRoutes: new Set(),
    serverAuthz: new Map(), routeAuthz: new Map(), namespaceAuthz: [], rateLimitOf: new Map(),
  };
  selectServers(l);
  attachRoutes(l);
  collectAuthorizationPolicies(l);
  collectServerAuthorizations(l);
  collectRateLimits(l);
  return { diagnostics, linkerd: assemble(l, resolveDefaults(l)), applied };
}

/**
 * Gateway API routes alone do not bring Linkerd in: only policy.linkerd.io resources or a route whose parent
 * is a Linkerd Server do (then Linkerd governs every port of the workload). An explicitly configured default
 * policy (option or workload annotation) governs even with no Linkerd document, as linkerd2-proxy always does.
 */
function governs(docs: PolicyDocument[], options: CompileOptions): boolean {
  const annotated = options.workload.annotations[DEFAULT_POLICY_ANNOTATION];
  if (options.linkerd.defaultPolicyConfigured === true || (annotated !== undefined && isDefaultPolicyName(annotated))) return true;
  return docs.some((d) => d.apiVersion.startsWith('policy.linkerd.io/')
    || objects(specOf(d).parentRefs).some((p) => groupOf(p) === 'policy.linkerd.io' && String(p.kind ?? '').toLowerCase() === 'server'));
}

const serverNamed = (l: Lowering, namespace: string, name: string) => l.allServers.find((s) => namespaceOf(s) === namespace && s.metadata.name === name);

/** Phase 1: Servers selecting this workload, one per port (oldest wins). */
function selectServers(l: Lowering): void {
  l.allServers = l.byKind('Server');
  for (const doc of l.allServers) {
    const spec = specOf(doc);
    if (namespaceOf(doc) !== l.ns || spec.podSelector === undefined || !selectorMatches(spec.podSelector, l.options.workload.labels)) continue;
    const port = spec.port;
    let ports: number[] = [];
    if (typeof port === 'number') ports = [port];
    else if (typeof port === 'string') {
      const resolved = l.options.linkerd.portNames[port];
      if (resolved === undefined) l.warn(doc, Code.LINKERD_PORT_NAME_UNRESOLVED, `port name "${port}" is not a named port of this workload; the Server selects no port`, 'spec.port', 'info');
      else ports = [resolved];
    }
    for (const p of ports) {
      const owner = l.ownerOfPort.get(p);
      if (owner) {
        l.warn(doc, Code.LINKERD_SERVER_CONFLICT, `Server ${owner.metadata.name} (older) already selects port ${p}; this Server is ignored for it`, 'spec.port');
        continue;
      }
      l.ownerOfPort.set(p, doc);
      l.applied.add(doc);
    }
  }
  l.ownedServers = new Set(l.ownerOfPort.values());
}

/** Phase 2: routes attached to our Servers (valid parents, supported features, matching protocol). */
function attachRoutes(l: Lowering): void {
  l.routeDocs = l.docs
    .filter((d) => d.kind === 'HTTPRoute' || d.kind === 'GRPCRoute')
    .sort(compareByAge)
    .map((doc) => ({ doc, group: doc.apiVersion.startsWith('policy.linkerd.io/') ? 'policy.linkerd.io' : 'gateway.networking.k8s.io', grpc: doc.kind === 'GRPCRoute' }));
  for (const rd of l.routeDocs) {
    const { doc } = rd;
    const spec = specOf(doc);
    const serverParents = objects(spec.parentRefs)
      .map((p, i) => ({ p, i }))
      .filter(({ p }) => groupOf(p) === 'policy.linkerd.io' && String(p.kind ?? '').toLowerCase() === 'server');
    if (serverParents.length === 0) continue;
    const invalid = serverParents.find(({ p }) => (p.namespace !== undefined && p.namespace !== namespaceOf(doc)) || p.port !== undefined || p.sectionName !== undefined);
    if (invalid) {
      l.warn(doc, Code.LINKERD_ROUTE_INVALID_PARENT, 'a Server parentRef must be in the route\'s namespace and must not set port or sectionName; the route is ignored', `spec.parentRefs[${invalid.i}]`);
      continue;
    }
    const unsupported = routeUnsupportedFeature(spec, rd.grpc);
    if (unsupported) {
      l.warn(doc, Code.LINKERD_ROUTE_UNSUPPORTED, `${unsupported.what}; Linkerd rejects the route, so it is ignored`, unsupported.at);
      continue;
    }
    l.usableRoutes.add(rd);
    for (const { p, i } of serverParents) {
      const server = serverNamed(l, namespaceOf(doc), String(p.name));
      if (!server) {
        l.warn(doc, Code.LINKERD_REF_MISSING, `parent Server ${namespaceOf(doc)}/${String(p.name)} does not exist (NoMatchingParent); the route is not used for it`, `spec.parentRefs[${i}]`);
        continue;
      }
      if (!l.ownedServers.has(server)) continue;
      const protocol = (specOf(server).proxyProtocol as ServerProtocol | undefined) ?? 'unknown';
      if (rd.grpc !== (protocol === 'gRPC')) {
        l.warn(doc, Code.LINKERD_ROUTE_PROTOCOL, rd.grpc
          ? `Server ${server.metadata.name} does not use proxyProtocol gRPC, so this GRPCRoute is not used`
          : `Server ${server.metadata.name} uses proxyProtocol gRPC, so only GRPCRoutes apply to it; this HTTPRoute is not used`, `spec.parentRefs[${i}]`);
        continue;
      }
      const attached = l.routesOfServer.get(server) ?? [];
      if (!attached.includes(rd)) attached.push(rd);
      l.routesOfServer.set(server, attached);
      l.applied.add(doc);
    }
  }
}

function pushTo<K>(map: Map<K, LinkerdAuthorization[]>, key: K, a: LinkerdAuthorization): void {
  const list = map.get(key) ?? [];
  list.push(a);
  map.set(key, list);
}

/** A MeshTLSAuthentication as a matcher: `identities` entries, or `identityRefs` to ServiceAccounts and Namespaces. */
function meshTlsMatcher(l: Lowering, doc: PolicyDocument): Matcher {
  const spec = specOf(doc);
  if (spec.identities !== undefined) return identityMatcher(strings(spec.identities), l.cpNs);
  const exact: string[] = [];
  const suffixes: string[] = [];
  for (const ref of objects(spec.identityRefs)) {
    const kind = String(ref.kind).toLowerCase();
    const name = String(ref.name);
    // A ServiceAccount named `*` is a literal name, not a wildcard (meshtls_authentication.rs).
    if (kind === 'serviceaccount') exact.push(serviceAccountIdentity(name, typeof ref.namespace === 'string' ? ref.namespace : namespaceOf(doc), l.cpNs, l.td));
    else if (kind === 'namespace') suffixes.push(namespaceIdentitySuffix(name, l.cpNs, l.td));
  }
  return namesMatcher(exact, suffixes, l.cpNs);
}

/** Phase 3: AuthorizationPolicies, their authentications, and their target (Server, Namespace or route). */
function collectAuthorizationPolicies(l: Lowering): void {
  const meshTls = new Map(l.byKind('MeshTLSAuthentication').map((d) => [`${namespaceOf(d)}/${d.metadata.name}`, d]));
  const networkAuths = new Map(l.byKind('NetworkAuthentication').map((d) => [`${namespaceOf(d)}/${d.metadata.name}`, d]));
  for (const doc of l.byKind('AuthorizationPolicy')) {
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
        parts.push(namesMatcher([serviceAccountIdentity(name, refNs, l.cpNs, l.td)], [], l.cpNs));
        return;
      }
      const target = kind === 'MeshTLSAuthentication' ? meshTls.get(`${refNs}/${name}`) : networkAuths.get(`${refNs}/${name}`);
      if (!target) {
        broken = true;
        l.warn(doc, Code.LINKERD_REF_MISSING, `${kind ?? 'authentication'} ${refNs}/${name} does not exist; Linkerd ignores this AuthorizationPolicy`, `spec.requiredAuthenticationRefs[${i}]`);
        return;
      }
      usedAuthn.push(target);
      parts.push(kind === 'MeshTLSAuthentication' ? meshTlsMatcher(l, target) : networksMatcher(parseNetworks(specOf(target).networks)));
    });
    if (broken) continue;
    const authz: LinkerdAuthorization = { ref: { dialect: 'linkerd', kind: 'AuthorizationPolicy', namespace: policyNs, name: doc.metadata.name }, match: and(parts), audit: false };
    if (targetAuthorization(l, doc, authz)) { l.applied.add(doc); for (const a of usedAuthn) l.applied.add(a); }
  }
}

/** Files an AuthorizationPolicy under its target; true when the target takes part for this workload. */
function targetAuthorization(l: Lowering, doc: PolicyDocument, authz: LinkerdAuthorization): boolean {
  const policyNs = namespaceOf(doc);
  const spec = specOf(doc);
  const target = isObject(spec.targetRef) ? spec.targetRef : {};
  const targetKind = authorizationTarget(target);
  const targetName = String(target.name);
  if (targetKind === 'Server') {
    const server = serverNamed(l, policyNs, targetName);
    if (!server) l.warn(doc, Code.LINKERD_REF_MISSING, `target Server ${policyNs}/${targetName} does not exist; the policy authorizes nothing`, 'spec.targetRef');
    else if (l.ownedServers.has(server)) { pushTo(l.serverAuthz, server, authz); return true; }
    return false;
  }
  if (targetKind === 'Namespace') {
    if (policyNs !== l.ns) return false;
    l.namespaceAuthz.push(authz);
    return l.ownedServers.size > 0;
  }
  if (!targetKind) return false;
  const wantGrpc = targetKind === 'GRPCRoute';
  const wantGroup = targetKind === 'HTTPRoute:policy.linkerd.io' ? 'policy.linkerd.io' : 'gateway.networking.k8s.io';
  const route = l.routeDocs.find((r) => r.grpc === wantGrpc && r.group === wantGroup && namespaceOf(r.doc) === policyNs && r.doc.metadata.name === targetName);
  if (!route) {
    l.warn(doc, Code.LINKERD_REF_MISSING, `target ${wantGrpc ? 'GRPCRoute' : 'HTTPRoute'} ${policyNs}/${targetName} (${wantGroup}) does not exist; the policy authorizes nothing`, 'spec.targetRef');
    return false;
  }
  if (!l.usableRoutes.has(route)) return false;
  pushTo(l.routeAuthz, route.doc, authz);
  return [...l.routesOfServer.values()].some((list) => list.includes(route));
}

/** Phase 4: the older ServerAuthorization resource (server by name or selector; client networks and meshTLS). */
function collectServerAuthorizations(l: Lowering): void {
  for (const doc of l.byKind('ServerAuthorization')) {
    const spec = specOf(doc);
    const server = isObject(spec.server) ? spec.server : {};
    const client = isObject(spec.client) ? spec.client : {};
    const docNs = namespaceOf(doc);
    let targets: PolicyDocument[];
    if (typeof server.name === 'string') {
      const s = serverNamed(l, docNs, server.name);
      if (!s) { l.warn(doc, Code.LINKERD_REF_MISSING, `Server ${docNs}/${server.name} does not exist; the ServerAuthorization authorizes nothing`, 'spec.server.name'); continue; }
      targets = [s];
    } else {
      targets = l.allServers.filter((s) => namespaceOf(s) === docNs && selectorMatches(server.selector, s.metadata.labels));
    }
    const networks = parseNetworks(client.networks);
    // Empty networks mean the cluster networks, not everywhere (grpc/src/inbound.rs `to_authz`).
    const net = networks.length > 0 ? networksMatcher(networks) : cidrsMatcher(l.options.linkerd.clusterNetworks);
    let identity: Matcher = { type: 'any' };
    const mesh = isObject(client.meshTLS) ? client.meshTLS : undefined;
    if (mesh) {
      if (mesh.unauthenticatedTLS === true) identity = { type: 'peer.authenticated' };
      else if (mesh.identities !== undefined) identity = identityMatcher(strings(mesh.identities), l.cpNs);
      else identity = namesMatcher(objects(mesh.serviceAccounts).map((sa) => serviceAccountIdentity(String(sa.name), typeof sa.namespace === 'string' ? sa.namespace : docNs, l.cpNs, l.td)), [], l.cpNs);
    }
    const authz: LinkerdAuthorization = { ref: { dialect: 'linkerd', kind: 'ServerAuthorization', namespace: docNs, name: doc.metadata.name }, match: and([net, identity]), audit: false };
    for (const s of targets) if (l.ownedServers.has(s)) { pushTo(l.serverAuthz, s, authz); l.applied.add(doc); }
  }
}

/** Phase 5: HTTPLocalRateLimitPolicy, one per Server (oldest wins). */
function collectRateLimits(l: Lowering): void {
  for (const doc of l.byKind('HTTPLocalRateLimitPolicy')) {
    const spec = specOf(doc);
    const target = isObject(spec.targetRef) ? spec.targetRef : {};
    const server = serverNamed(l, namespaceOf(doc), String(target.name));
    if (!server) { l.warn(doc, Code.LINKERD_REF_MISSING, `target Server ${namespaceOf(doc)}/${String(target.name)} does not exist (NoMatchingTarget)`, 'spec.targetRef'); continue; }
    if (!l.ownedServers.has(server)) continue;
    if (l.rateLimitOf.has(server)) { l.warn(doc, Code.LINKERD_RATELIMIT_CONFLICT, `Server ${server.metadata.name} already has an older HTTPLocalRateLimitPolicy (RateLimitReasonAlreadyExists); this one is ignored`, 'spec.targetRef'); continue; }
    const rps = (v: JsonValue | undefined) => (isObject(v) && typeof v.requestsPerSecond === 'number' ? v.requestsPerSecond : undefined);
    l.rateLimitOf.set(server, {
      ref: { dialect: 'linkerd', kind: 'HTTPLocalRateLimitPolicy', namespace: namespaceOf(doc), name: doc.metadata.name },
      totalRps: rps(spec.total),
      identityRps: rps(spec.identity),
      overrides: objects(spec.overrides).map((o) => ({
        rps: Number(o.requestsPerSecond),
        identities: objects(o.clientRefs).map((c) => serviceAccountIdentity(String(c.name), typeof c.namespace === 'string' ? c.namespace : namespaceOf(doc), l.cpNs, l.td)),
      })),
    });
    l.applied.add(doc);
  }
}

interface Defaults {
  policy: string;
  opaque: { ports: number[]; bad: string[] };
  requireId: { ports: number[]; bad: string[] };
}

/** Phase 6: the workload's default policy and port annotations (their diagnostics point at the workload). */
function resolveDefaults(l: Lowering): Defaults {
  const annotations = l.options.workload.annotations;
  const workloadWarn = (code: string, message: string, fieldPath: string) =>
    l.diagnostics.push({ code, severity: 'warning', message, origin: { file: '<workload>', line: 0, column: 0 }, fieldPath });
  let policy = l.options.linkerd.defaultPolicy || 'all-unauthenticated';
  if (!isDefaultPolicyName(policy)) {
    workloadWarn(Code.LINKERD_BAD_DEFAULT_POLICY, `default policy "${policy}" is not one of ${DEFAULT_POLICY_NAMES.join(', ')}; using deny`, 'defaultPolicy');
    policy = 'deny';
  }
  const annotated = annotations[DEFAULT_POLICY_ANNOTATION];
  if (annotated !== undefined) {
    if (isDefaultPolicyName(annotated)) policy = annotated;
    else workloadWarn(Code.LINKERD_BAD_DEFAULT_POLICY, `workload annotation ${DEFAULT_POLICY_ANNOTATION}="${annotated}" is not a default policy name; the cluster default ${policy} applies`, `annotations[${DEFAULT_POLICY_ANNOTATION}]`);
  }
  const opaque = parsePortList(annotations[OPAQUE_PORTS_ANNOTATION] ?? '');
  const requireId = parsePortList(annotations[REQUIRE_IDENTITY_ANNOTATION] ?? '');
  for (const bad of opaque.bad) workloadWarn(Code.LINKERD_BAD_PORT_LIST, `"${bad}" is not a port or range; ignored`, `annotations[${OPAQUE_PORTS_ANNOTATION}]`);
  for (const bad of requireId.bad) workloadWarn(Code.LINKERD_BAD_PORT_LIST, `"${bad}" is not a port or range; ignored`, `annotations[${REQUIRE_IDENTITY_ANNOTATION}]`);
  return { policy, opaque, requireId };
}

/** Built-in routes: the default route (HTTP, or any gRPC method) and the probe route of a port. */
function builtinRoutes(l: Lowering) {
  const defaultRouteRef = (name: string): PolicyRef => ({ dialect: 'linkerd', kind: 'default', namespace: l.ns, name });
  const http: LinkerdRoute = { ref: defaultRouteRef('default'), hostnames: [], rules: [{ matches: [], filters: [] }], authorizations: [], order: BUILTIN_ORDER };
  const grpc: LinkerdRoute = { ref: defaultRouteRef('default'), hostnames: [], rules: [{ matches: [{ grpc: {}, headers: [], queryParams: [] }], filters: [] }], authorizations: [], order: BUILTIN_ORDER };
  const probeNetworks = l.options.linkerd.probeNetworks;
  const probe = (port: number): LinkerdRoute | undefined => {
    const paths = l.options.linkerd.probePaths[port] ?? [];
    if (paths.length === 0 || probeNetworks.length === 0) return undefined;
    return {
      ref: defaultRouteRef('probe'), hostnames: [],
      rules: [{ matches: paths.map((p) => ({ path: { kind: 'exact', value: p }, method: 'GET', headers: [], queryParams: [] })), filters: [] }],
      authorizations: [{ ref: defaultRouteRef('probe'), match: cidrsMatcher(probeNetworks), audit: false }],
      order: BUILTIN_ORDER - 1,
    };
  };
  return {
    http,
    forPort(port: number, protocol: ServerProtocol): LinkerdRoute[] {
      if (protocol === 'gRPC') return [grpc];
      const p = probe(port);
      return p ? [p, http] : [http];
    },
  };
}

/** Phase 7: a LinkerdServer per port (user Servers, then default servers for ports the annotations name). */
function assemble(l: Lowering, defaults: Defaults): LinkerdProgram {
  const builtins = builtinRoutes(l);
  const clusterNetworks = l.options.linkerd.clusterNetworks;
  const routeOrder = new Map(l.routeDocs.map((r, i) => [r, i]));
  const userRoute = (rd: RouteDoc): LinkerdRoute => {
    const spec = specOf(rd.doc);
    return {
      ref: { dialect: 'linkerd', kind: rd.doc.kind, namespace: namespaceOf(rd.doc), name: rd.doc.metadata.name },
      hostnames: strings(spec.hostnames).map((h) => h.toLowerCase()),
      // The HTTPRoute CRD defaults an absent `rules` to one rule matching PathPrefix `/` (what the API
      // server would store); an explicit empty list matches nothing.
      rules: spec.rules === undefined && !rd.grpc ? [{ matches: [], filters: [] }] : objects(spec.rules).map((r) => lowerRule(r, rd.grpc)),
      authorizations: l.routeAuthz.get(rd.doc) ?? [],
      order: routeOrder.get(rd) ?? 0,
    };
  };
  const opaquePorts = new Set(defaults.opaque.ports);
  const requireIdPorts = new Set(defaults.requireId.ports);
  // Ports that differ only by number share one default server (a `1-65535` annotation stays cheap).
  const defaultServers = new Map<string, LinkerdServer>();
  const defaultServer = (port: number | undefined): LinkerdServer => {
    let name = defaults.policy;
    if (port !== undefined && requireIdPorts.has(port)) {
      if (name === 'all-unauthenticated') name = 'all-authenticated';
      else if (name === 'cluster-unauthenticated') name = 'cluster-authenticated';
    }
    const protocol: ServerProtocol = port !== undefined && opaquePorts.has(port) ? 'opaque' : 'unknown';
    const probePaths = port === undefined ? [] : l.options.linkerd.probePaths[port] ?? [];
    const key = probePaths.length === 0 ? `${name}|${protocol}` : `${name}|${protocol}|${port ?? ''}`;
    let server = defaultServers.get(key);
    if (!server) {
      const authz = defaultPolicyAuthorization(name, l.ns, clusterNetworks, l.cpNs);
      server = {
        ref: { dialect: 'linkerd', kind: 'default', namespace: l.ns, name },
        protocol,
        routes: port === undefined ? [builtins.http] : builtins.forPort(port, protocol),
        authorizations: authz ? [authz] : [],
      };
      defaultServers.set(key, server);
    }
    return server;
  };

  const servers: Record<number, LinkerdServer> = {};
  for (const [port, doc] of l.ownerOfPort) {
    const spec = specOf(doc);
    const protocol = (spec.proxyProtocol as ServerProtocol | undefined) ?? 'unknown';
    const attached = l.routesOfServer.get(doc) ?? [];
    // With at least one route the user's routes replace the default and probe routes (index.rs `http_routes`).
    const routes = attached.length > 0 ? attached.map(userRoute) : builtins.forPort(port, protocol);
    const access = typeof spec.accessPolicy === 'string' ? defaultPolicyAuthorization(spec.accessPolicy, l.ns, clusterNetworks, l.cpNs) : undefined;
    const authorizations = [...(l.serverAuthz.get(doc) ?? []), ...l.namespaceAuthz, ...(access ? [access] : [])];
    const server: LinkerdServer = { ref: { dialect: 'linkerd', kind: 'Server', namespace: l.ns, name: doc.metadata.name }, protocol, routes, authorizations };
    const rl = l.rateLimitOf.get(doc);
    if (rl) server.rateLimit = rl;
    servers[port] = server;
  }
  const specialPorts = new Set<number>([...Object.keys(l.options.linkerd.probePaths).map(Number), ...defaults.opaque.ports, ...defaults.requireId.ports]);
  for (const port of specialPorts) if (servers[port] === undefined && Number.isInteger(port)) servers[port] = defaultServer(port);
  return { servers, defaultServer: defaultServer(undefined) };
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

function lowerRule(rule: Obj, grpc: boolean): RouteRule {
  const matches: RouteMatch[] = objects(rule.matches).map((m) => {
    const headers = objects(m.headers).map((h) => ({ name: String(h.name).toLowerCase(), match: stringMatch(h) }));
    if (grpc) {
      const method = isObject(m.method) ? m.method : {};
      const g: { service?: string; method?: string } = {};
      if (typeof method.service === 'string') g.service = method.service;
      if (typeof method.method === 'string') g.method = method.method;
      return { grpc: g, headers, queryParams: [] };
    }
    const out: RouteMatch = { headers, queryParams: objects(m.queryParams).map((q) => ({ name: String(q.name), match: stringMatch(q) })) };
    const p = isObject(m.path) ? m.path : { type: 'PathPrefix', value: '/' };
    const type = typeof p.type === 'string' ? p.type : 'PathPrefix';
    const value = typeof p.value === 'string' ? p.value : '/';
    const path: PathMatcher = type === 'Exact' ? { kind: 'exact', value } : type === 'RegularExpression' ? { kind: 'regex', pattern: value } : { kind: 'segment-prefix', value };
    out.path = path;
    if (typeof m.method === 'string') out.method = m.method;
    return out;
  });
  const filters: RouteFilter[] = [];
  for (const f of objects(rule.filters)) {
    if (f.type === 'RequestHeaderModifier' && isObject(f.requestHeaderModifier)) {
      const hm = f.requestHeaderModifier;
      const kv = (v: JsonValue | undefined) => objects(v).map((x) => ({ name: String(x.name), value: String(x.value) }));
      filters.push({ type: 'RequestHeaderModifier', set: kv(hm.set), add: kv(hm.add), remove: strings(hm.remove) });
    } else if (f.type === 'RequestRedirect' && isObject(f.requestRedirect)) {
      const rr = f.requestRedirect;
      const redirect: Extract<RouteFilter, { type: 'RequestRedirect' }> = { type: 'RequestRedirect', statusCode: typeof rr.statusCode === 'number' ? rr.statusCode : 302 };
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
