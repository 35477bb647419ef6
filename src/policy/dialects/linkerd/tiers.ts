// Owns writing Linkerd's composition as one tier: a scope per Server port (route table, then the route's,
// the Server's and localhost authorizations, audit as the fallback, default deny), as linkerd2-proxy
// linkerd/app/inbound/src/policy evaluates it (linkerd.md §1, §6-§8).
import type { PolicyRef, PolicyTier, Route, TierRule, TierScope } from '../../ir.js';
import { identityNameTemplate } from './identity.js';
import type { LinkerdAuthorization, LinkerdProgram, LinkerdRoute, LinkerdServer } from './types.js';

/** Linkerd's authz_kind/authz_name labels: `authorizationpolicy/<name>`, `default/probe`, ... */
export function authorizationLabel(ref: PolicyRef): string {
  return `${ref.kind.toLowerCase()}/${ref.name}`;
}

export function routeLabel(route: LinkerdRoute): string {
  return route.ref.kind === 'default' ? route.ref.name : `${route.ref.kind.toLowerCase()}/${route.ref.name}`;
}

function authorizationRule(a: LinkerdAuthorization): TierRule {
  return a.audit
    ? { id: authorizationLabel(a.ref), policy: a.ref, action: 'audit', match: a.match, reason: 'audit_would_deny', namedAs: 'authorization' }
    : { id: authorizationLabel(a.ref), policy: a.ref, action: 'allow', match: a.match, reason: 'authorized', namedAs: 'authorization' };
}

function route(r: LinkerdRoute): Route {
  return { ref: r.ref, label: routeLabel(r), hostnames: r.hostnames, rules: r.rules, authorizations: r.authorizations.map(authorizationRule), order: r.order };
}

/**
 * A Server as a scope. linkerd2-proxy appends a localhost authorization to every Server; explicit
 * authorizations are tried first everywhere, so an audit-admitted request always means "would have been denied".
 */
function serverScope(server: LinkerdServer, localhost: TierRule, controlPlaneNamespace: string): TierScope {
  const connectionLevel = server.protocol === 'opaque' || server.protocol === 'TLS';
  const explicit = server.authorizations.filter((a) => !a.audit).map(authorizationRule);
  const audit = server.authorizations.filter((a) => a.audit).map(authorizationRule);
  const scope: TierScope = {
    ref: server.ref,
    routes: connectionLevel ? null : server.routes.map(route),
    rules: [...explicit, localhost, ...audit],
    otherwise: { verdict: 'deny', reason: 'unauthorized', policy: server.ref },
    shadow: null,
    rateLimit: null,
  };
  // A Server that declares HTTP skips protocol detection: a non-HTTP stream fails to parse and is closed.
  if (!connectionLevel && server.protocol !== 'unknown') scope.refuseConnections = 'protocol_mismatch';
  const rl = server.rateLimit;
  if (rl) {
    const limit: NonNullable<TierScope['rateLimit']> = {
      ref: rl.ref,
      overrides: rl.overrides.map((o) => ({ rps: o.rps, match: { type: 'peer.name', template: identityNameTemplate(controlPlaneNamespace), exact: o.identities, suffixes: [] } })),
    };
    if (rl.totalRps !== undefined) limit.totalRps = rl.totalRps;
    if (rl.identityRps !== undefined) limit.identityRps = rl.identityRps;
    scope.rateLimit = limit;
  }
  return scope;
}

/** Linkerd judges every port of the workload: its Servers' ports, the default server for the rest. */
export function linkerdTier(program: LinkerdProgram, namespace: string, controlPlaneNamespace: string): PolicyTier {
  const localhost: TierRule = authorizationRule({
    ref: { dialect: 'linkerd', kind: 'default', namespace, name: 'localhost' },
    match: { type: 'source.ip', cidrs: ['127.0.0.1/32', '::1/128'] },
    audit: false,
  });
  const scopes = new Map<LinkerdServer, TierScope>();
  const scopeOf = (s: LinkerdServer): TierScope => {
    let scope = scopes.get(s);
    if (!scope) {
      scope = serverScope(s, localhost, controlPlaneNamespace);
      scopes.set(s, scope);
    }
    return scope;
  };
  const ports: Record<number, TierScope> = {};
  for (const [port, server] of Object.entries(program.servers)) ports[Number(port)] = scopeOf(server);
  return { dialect: 'linkerd', name: 'inbound', group: 'linkerd', protocols: ['http', 'grpc', 'tcp'], ports, anyPort: scopeOf(program.defaultServer) };
}
