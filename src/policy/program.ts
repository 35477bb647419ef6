// Owns compileProgram: a PolicyProgram (IR data) compiled once per snapshot into what evaluate() walks:
// matcher closures, one rule index per rule list, compiled route tables. Derived data lives here, never in side caches.
import type { RequestProtocol } from './context-types.js';
import type { Matcher, PolicyProgram, PolicyTier, RateLimit, Route, TierRule, TierScope } from './ir.js';
import { compileMatcher } from './match/compile.js';
import { buildRuleSet, type RuleEntry, type RuleSet } from './match/rule-index.js';
import { compileRoute, type CompiledRoute } from './match/routes.js';
import type { CompiledMatcher, MatcherEnv } from './match/types.js';

/** How the scan treats a matching rule (CompiledRule.kind). */
export const LOG = 0;
/** allow, deny, pass, custom: the first match ends the list. */
export const DECIDE = 1;
/** audit: admits as a would-deny when nothing decides. */
export const FALLBACK = 2;
/** dry-run: the first match is the shadow result. */
export const SHADOW = 3;
/** log with a header edit: marks like LOG, and every match before the decision adds its edit. */
export const EDIT = 4;

export interface CompiledList {
  set: RuleSet;
  /** Shadow entries exist: after a decision the scan goes on until one of them matches. */
  hasShadow: boolean;
}

export interface CompiledScope {
  scope: TierScope;
  /** The scope's rules (and shadow rules), used when no route is selected. */
  list: CompiledList;
  routes: CompiledRoute[] | null;
  /** Per route: the route's authorizations, then the scope's rules. */
  byRoute: Map<Route, CompiledList>;
  rateLimit: { limit: RateLimit; overrides: { rps: number; test: CompiledMatcher }[] } | null;
}

export interface CompiledTier {
  tier: PolicyTier;
  /** Bit per request protocol (PROTOCOL_BIT) this tier judges. */
  protocols: number;
  ports: Map<number, CompiledScope>;
  anyPort: CompiledScope;
  /** Index of the first tier of the next group: where an allow continues. */
  nextGroup: number;
}

export interface CompiledProgram {
  tiers: CompiledTier[];
  env: MatcherEnv;
}

export const PROTOCOL_BIT: Record<RequestProtocol, number> = { http: 1, grpc: 2, tcp: 4 };

function kindOf(rule: TierRule): number {
  switch (rule.action) {
    case 'log': return rule.edit === undefined ? LOG : EDIT;
    case 'audit': return FALLBACK;
    default: return DECIDE;
  }
}

function compileList(rules: readonly TierRule[], scope: TierScope, env: MatcherEnv, cache: Map<Matcher, CompiledMatcher>): CompiledList {
  const entries: RuleEntry[] = rules.map((rule) => ({ rule, kind: kindOf(rule) }));
  const shadow = scope.shadow?.rules ?? [];
  for (const rule of shadow) entries.push({ rule, kind: SHADOW });
  return { set: buildRuleSet(entries, env, cache), hasShadow: shadow.length > 0 };
}

function compileScope(scope: TierScope, env: MatcherEnv, cache: Map<Matcher, CompiledMatcher>): CompiledScope {
  const byRoute = new Map<Route, CompiledList>();
  let routes: CompiledRoute[] | null = null;
  if (scope.routes !== null) {
    const ordered = [...scope.routes].sort((a, b) => a.order - b.order);
    routes = ordered.map(compileRoute);
    for (const route of ordered) byRoute.set(route, compileList([...route.authorizations, ...scope.rules], scope, env, cache));
  }
  const compiled = (m: Matcher): CompiledMatcher => cache.get(m) ?? compileMatcher(m, env);
  return {
    scope,
    list: compileList(scope.rules, scope, env, cache),
    routes,
    byRoute,
    rateLimit: scope.rateLimit ? { limit: scope.rateLimit, overrides: scope.rateLimit.overrides.map((o) => ({ rps: o.rps, test: compiled(o.match) })) } : null,
  };
}

export function compileProgram(program: PolicyProgram, env: MatcherEnv): CompiledProgram {
  const cache = new Map<Matcher, CompiledMatcher>();
  const scopes = new Map<TierScope, CompiledScope>();
  // Scopes are shared between ports (Linkerd default servers): compile each object once.
  const scopeOf = (scope: TierScope): CompiledScope => {
    let cs = scopes.get(scope);
    if (!cs) {
      cs = compileScope(scope, env, cache);
      scopes.set(scope, cs);
    }
    return cs;
  };
  const tiers = program.tiers.map((tier): CompiledTier => {
    const ports = new Map<number, CompiledScope>();
    for (const [port, scope] of Object.entries(tier.ports)) ports.set(Number(port), scopeOf(scope));
    let protocols = 0;
    for (const p of tier.protocols) protocols |= PROTOCOL_BIT[p];
    return { tier, protocols, ports, anyPort: scopeOf(tier.anyPort), nextGroup: 0 };
  });
  for (let i = tiers.length - 1; i >= 0; i--) {
    const next = tiers[i + 1];
    (tiers[i] as CompiledTier).nextGroup = next === undefined ? tiers.length : next.tier.group !== (tiers[i] as CompiledTier).tier.group ? i + 1 : next.nextGroup;
  }
  return { tiers, env };
}
