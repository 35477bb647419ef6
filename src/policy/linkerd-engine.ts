// Owns Linkerd evaluation over the IR: server by port, best route (404), authorizations (403 / gRPC 7),
// filters and rate-limit effects. Follows linkerd2-proxy linkerd/app/inbound/src/policy (spec §1, §6-§8).

import type { RequestContext } from './context-types.js';
import type { Decision, DecisionEffects } from './decision.js';
import type { CompileOptions, LinkerdAuthorization, LinkerdProgram, LinkerdRoute, LinkerdServer, PolicyRef } from './ir.js';
import { compileMatcher } from './match/compile.js';
import type { CompiledMatcher, MatcherEnv } from './match/types.js';
import { linkerdNameOfPeer } from './dialects/linkerd/identity.js';
import { compileRoute, segmentPrefixMatches, selectRoute, type CompiledRoute, type RouteHit } from './dialects/linkerd/routes.js';

export type MatcherCompiler = typeof compileMatcher;

interface PreparedAuthorization {
  authz: LinkerdAuthorization;
  /** `authorizationpolicy/<name>`, `default/probe`, ... (Linkerd's authz_kind/authz_name labels). */
  label: string;
  test: CompiledMatcher;
}

interface PreparedRoute {
  compiled: CompiledRoute;
  label: string;
  explicit: PreparedAuthorization[];
  audit: PreparedAuthorization[];
}

interface PreparedServer {
  server: LinkerdServer;
  routes: PreparedRoute[];
  compiledRoutes: CompiledRoute[];
  byRoute: Map<LinkerdRoute, PreparedRoute>;
  explicit: PreparedAuthorization[];
  audit: PreparedAuthorization[];
}

export interface PreparedLinkerd {
  program: LinkerdProgram;
  servers: Map<number, PreparedServer>;
  defaultServer: PreparedServer;
  controlPlaneNamespace: string;
  localhost: PreparedAuthorization;
  localhostList: readonly PreparedAuthorization[];
}

/** One step of an explanation, in evaluation order. */
export interface LinkerdTraceStep {
  step: 'server' | 'route' | 'authorization' | 'rate-limit';
  detail: string;
  matched?: boolean;
}

export function authorizationLabel(ref: PolicyRef): string {
  return `${ref.kind.toLowerCase()}/${ref.name}`;
}

export function routeLabel(route: LinkerdRoute): string {
  return route.ref.kind === 'default' ? route.ref.name : `${route.ref.kind.toLowerCase()}/${route.ref.name}`;
}

/**
 * Compiles every authorization matcher once. `compile` is injectable so the engine can be tested
 * against a stand-in matcher compiler; production uses match/compile.ts.
 */
export function prepareLinkerd(program: LinkerdProgram, options: CompileOptions, compile: MatcherCompiler = compileMatcher): PreparedLinkerd {
  const env: MatcherEnv = { linkerdControlPlaneNamespace: options.linkerd.controlPlaneNamespace || 'linkerd' };
  const cache = new Map<LinkerdAuthorization, PreparedAuthorization>();
  const prep = (authz: LinkerdAuthorization): PreparedAuthorization => {
    let p = cache.get(authz);
    if (!p) {
      p = { authz, label: authorizationLabel(authz.ref), test: compile(authz.match, env) };
      cache.set(authz, p);
    }
    return p;
  };
  const routeCache = new Map<LinkerdRoute, PreparedRoute>();
  const prepRoute = (route: LinkerdRoute): PreparedRoute => {
    let p = routeCache.get(route);
    if (!p) {
      p = {
        compiled: compileRoute(route), label: routeLabel(route),
        explicit: route.authorizations.filter((a) => !a.audit).map(prep),
        audit: route.authorizations.filter((a) => a.audit).map(prep),
      };
      routeCache.set(route, p);
    }
    return p;
  };
  const serverCache = new Map<LinkerdServer, PreparedServer>();
  const prepServer = (server: LinkerdServer): PreparedServer => {
    let p = serverCache.get(server);
    if (!p) {
      const routes = [...server.routes].sort((a, b) => a.order - b.order).map(prepRoute);
      p = {
        server, routes, compiledRoutes: routes.map((r) => r.compiled), byRoute: new Map(routes.map((r) => [r.compiled.route, r])),
        explicit: server.authorizations.filter((a) => !a.audit).map(prep),
        audit: server.authorizations.filter((a) => a.audit).map(prep),
      };
      serverCache.set(server, p);
    }
    return p;
  };
  const servers = new Map<number, PreparedServer>();
  for (const [port, server] of Object.entries(program.servers)) servers.set(Number(port), prepServer(server));
  const localhostAuthz: LinkerdAuthorization = {
    ref: { dialect: 'linkerd', kind: 'default', namespace: options.workload.namespace, name: 'localhost' },
    match: { type: 'source.ip', cidrs: ['127.0.0.1/32', '::1/128'] },
    audit: false,
  };
  const localhost = prep(localhostAuthz);
  return { program, servers, defaultServer: prepServer(program.defaultServer), controlPlaneNamespace: env.linkerdControlPlaneNamespace, localhost, localhostList: [localhost] };
}

export function evaluateLinkerd(prepared: PreparedLinkerd, ctx: RequestContext): Decision {
  return decide(prepared, ctx, undefined);
}

/** The decision plus every step that led to it (for `portcullis explain`). */
export function explainLinkerd(prepared: PreparedLinkerd, ctx: RequestContext): { decision: Decision; trace: LinkerdTraceStep[] } {
  const trace: LinkerdTraceStep[] = [];
  return { decision: decide(prepared, ctx, trace), trace };
}

function base(server: LinkerdServer): Decision {
  return {
    verdict: 'deny', reason: 'unauthorized', dialect: 'linkerd',
    policy: server.ref, rule: null, authorization: null, audit: null, shadow: null, effects: null,
  };
}

function decide(prepared: PreparedLinkerd, ctx: RequestContext, trace: LinkerdTraceStep[] | undefined): Decision {
  const ps = prepared.servers.get(ctx.port) ?? prepared.defaultServer;
  const server = ps.server;
  trace?.push({ step: 'server', detail: `port ${ctx.port}: ${server.ref.kind === 'default' ? `default server (${server.ref.name})` : `Server ${server.ref.namespace}/${server.ref.name}`}, proxyProtocol ${server.protocol}` });

  const connectionLevel = server.protocol === 'opaque' || server.protocol === 'TLS';
  if (ctx.protocol === 'tcp' && !connectionLevel && server.protocol !== 'unknown') {
    // A Server that declares HTTP skips protocol detection: a non-HTTP stream fails to parse and is closed.
    trace?.push({ step: 'authorization', detail: `non-HTTP connection on a ${server.protocol} Server is refused`, matched: false });
    return { ...base(server), reason: 'protocol_mismatch' };
  }
  if (ctx.protocol === 'tcp' || connectionLevel) {
    return authorize(prepared, ps, undefined, ctx, trace, null);
  }

  const hit = selectRoute(ps.compiledRoutes, ctx);
  if (!hit) {
    trace?.push({ step: 'route', detail: 'no route matches: 404 before any authorization', matched: false });
    return { ...base(server), verdict: 'not_found', reason: 'route_not_found' };
  }
  const pr = ps.byRoute.get(hit.route);
  trace?.push({ step: 'route', detail: `${pr?.label ?? routeLabel(hit.route)} (score ${hit.score.join(',')})`, matched: true });
  return authorize(prepared, ps, pr && { pr, hit }, ctx, trace, pr?.label ?? routeLabel(hit.route));
}

function authorize(
  prepared: PreparedLinkerd, ps: PreparedServer, route: { pr: PreparedRoute; hit: RouteHit } | undefined,
  ctx: RequestContext, trace: LinkerdTraceStep[] | undefined, rule: string | null,
): Decision {
  const server = ps.server;
  // Explicit authorizations first (route, then Server/Namespace/accessPolicy, then localhost); the audit
  // default only as a fallback, so an audit-admitted request always means "would have been denied".
  const first = (list: readonly PreparedAuthorization[], suffix: string): PreparedAuthorization | undefined => {
    for (const a of list) {
      const ok = a.test(ctx);
      trace?.push({ step: 'authorization', detail: a.label + suffix, matched: ok });
      if (ok) return a;
    }
    return undefined;
  };
  let admitted = (route && first(route.pr.explicit, '')) ?? first(ps.explicit, '') ?? first(prepared.localhostList, '');
  let audited = false;
  if (!admitted) {
    admitted = (route && first(route.pr.audit, ' (audit)')) ?? first(ps.audit, ' (audit)');
    audited = admitted !== undefined;
  }
  if (!admitted) return { ...base(server), rule };

  const effects = route ? routeEffects(route.hit, ctx) : emptyEffects();
  if (route && server.rateLimit) {
    const rl = server.rateLimit;
    const name = linkerdNameOfPeer(ctx.peer, prepared.controlPlaneNamespace);
    const override = name === undefined ? undefined : rl.overrides.find((o) => o.identities.includes(name));
    effects.rateLimit = { key: `${rl.ref.namespace}/${rl.ref.name}`, ref: rl.ref };
    if (rl.totalRps !== undefined) effects.rateLimit.totalRps = rl.totalRps;
    if (override) effects.rateLimit.overrideRps = override.rps;
    else if (rl.identityRps !== undefined) effects.rateLimit.identityRps = rl.identityRps;
    trace?.push({ step: 'rate-limit', detail: `${rl.ref.name}: total ${rl.totalRps ?? '-'}, ${override ? `override ${override.rps}` : `identity ${rl.identityRps ?? '-'}`} rps` });
  }
  const redirect = effects.redirect;
  const hasEffects = redirect !== null || effects.rateLimit !== null || effects.setHeaders.length + effects.addHeaders.length + effects.removeHeaders.length > 0;
  return {
    verdict: 'allow',
    reason: audited ? 'audit_would_deny' : redirect ? 'redirect' : 'authorized',
    dialect: 'linkerd',
    policy: admitted.authz.ref,
    rule,
    authorization: admitted.label,
    audit: audited ? { policy: server.ref, rule } : null,
    shadow: null,
    effects: hasEffects ? effects : null,
  };
}

function emptyEffects(): DecisionEffects {
  return { setHeaders: [], addHeaders: [], removeHeaders: [], redirect: null, rateLimit: null };
}

function routeEffects(hit: RouteHit, ctx: RequestContext): DecisionEffects {
  const effects = emptyEffects();
  for (const f of hit.rule.filters) {
    if (f.type === 'RequestHeaderModifier') {
      effects.setHeaders.push(...f.set);
      effects.addHeaders.push(...f.add);
      effects.removeHeaders.push(...f.remove);
    } else if (f.type === 'RequestRedirect' && !effects.redirect) {
      effects.redirect = { status: f.statusCode, location: redirectLocation(f, hit, ctx) };
    }
  }
  return effects;
}

/** Gateway API RequestRedirect: unspecified parts come from the request; a new scheme drops the port. */
function redirectLocation(f: Extract<LinkerdRoute['rules'][number]['filters'][number], { type: 'RequestRedirect' }>, hit: RouteHit, ctx: RequestContext): string {
  const scheme = f.scheme ?? 'http';
  const host = f.hostname ?? ctx.host;
  const authorityPort = /:(\d+)$/.exec(ctx.authority)?.[1];
  const port = f.port !== undefined ? String(f.port) : f.scheme !== undefined ? undefined : authorityPort;
  const defaultPort = scheme === 'https' ? '443' : '80';
  let path = ctx.path;
  if (f.path?.type === 'ReplaceFullPath') path = f.path.value;
  else if (f.path?.type === 'ReplacePrefixMatch') {
    const matched = hit.match?.path;
    const prefix = matched && matched.kind === 'segment-prefix' && segmentPrefixMatches(matched.value, ctx.path) ? matched.value.replace(/\/+$/, '') : '';
    const rest = ctx.path.slice(prefix.length);
    const replacement = f.path.value.replace(/\/+$/, '');
    path = replacement + rest;
    if (path === '') path = '/';
    else if (!path.startsWith('/')) path = `/${path}`;
  }
  const portPart = port !== undefined && port !== defaultPort ? `:${port}` : '';
  const query = ctx.query !== '' ? `?${ctx.query}` : '';
  return `${scheme}://${host}${portPart}${path}${query}`;
}
