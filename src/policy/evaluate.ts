// Owns evaluate(snapshot, context) -> Decision: synchronous, deterministic, allocation-light. Istio order
// CUSTOM -> AUDIT -> DENY -> ALLOW (istio.md §1, §12), then Linkerd; every dialect with policies must allow.
import type { RequestContext } from './context-types.js';
import type { Decision, ShadowResult } from './decision.js';
import type { IstioChain, IstioRule, PolicySnapshot } from './ir.js';
import { evaluateLinkerd, prepareLinkerd, type PreparedLinkerd } from './linkerd-engine.js';
import { buildGroupedRuleSet, matchGroups, type CompiledRule, type RuleSet } from './match/rule-index.js';
import type { MatcherEnv } from './match/types.js';

// Groups of the chain's one index, in evaluation order (CUSTOM filter, AUDIT, DENY, ALLOW; istio.md §1).
const CUSTOM = 0;
const AUDIT = 1;
const SHADOW_DENY = 2;
const DENY = 3;
const SHADOW_ALLOW = 4;
const ALLOW = 5;
const GROUPS = 6;
const bit = (g: number) => 1 << g;
/** A DENY match makes the ALLOW scan moot; nothing else cancels. */
const CANCELS = [0, 0, 0, bit(ALLOW), 0, 0];

export interface PreparedChain {
  chain: IstioChain;
  /** One index over all rules of the chain, grouped as above. */
  rules: RuleSet;
  /** Groups worth scanning for this chain (those with rules that can change the outcome). */
  wanted: number;
  hasShadowDeny: boolean;
  /** Dry-run ALLOW policies exist (even with no rules: a dry-run allow-nothing). */
  hasShadowAllow: boolean;
}

export interface PreparedSnapshot {
  istio: { http: PreparedChain; tcp: PreparedChain } | null;
  linkerd: PreparedLinkerd | null;
  customProviders: ReadonlySet<string>;
  env: MatcherEnv;
}

const prepared = new WeakMap<PolicySnapshot, PreparedSnapshot>();

export function matcherEnvFor(snapshot: PolicySnapshot): MatcherEnv {
  const extra = new Set<string>();
  for (const p of snapshot.jwtProviders) for (const c of p.spaceDelimitedClaims) extra.add(c);
  return {
    linkerdControlPlaneNamespace: snapshot.options.linkerd.controlPlaneNamespace,
    spaceDelimitedClaims: [...extra],
  };
}

function prepareChain(chain: IstioChain, env: MatcherEnv): PreparedChain {
  const enforced = (rules: IstioRule[]) => rules.filter((r) => !r.dryRun);
  const dryRun = (rules: IstioRule[]) => rules.filter((r) => r.dryRun);
  const groups: IstioRule[][] = [];
  groups[CUSTOM] = enforced(chain.custom);
  groups[AUDIT] = chain.audit;
  groups[SHADOW_DENY] = dryRun(chain.deny);
  groups[DENY] = enforced(chain.deny);
  groups[SHADOW_ALLOW] = dryRun(chain.allow);
  groups[ALLOW] = enforced(chain.allow);
  let wanted = 0;
  groups.forEach((list, g) => {
    if (list.length > 0 && (g !== ALLOW || chain.hasEnforcedAllow)) wanted |= bit(g);
  });
  return {
    chain,
    rules: buildGroupedRuleSet(groups, env),
    wanted,
    hasShadowDeny: (groups[SHADOW_DENY] as IstioRule[]).length > 0,
    hasShadowAllow: chain.hasShadowAllow || (groups[SHADOW_ALLOW] as IstioRule[]).length > 0,
  };
}

/** Compiles every matcher and builds the rule indexes once per snapshot (compile.ts calls this). */
export function prepareSnapshot(snapshot: PolicySnapshot): PreparedSnapshot {
  const existing = prepared.get(snapshot);
  if (existing) return existing;
  const env = matcherEnvFor(snapshot);
  const result: PreparedSnapshot = {
    istio: snapshot.istio ? { http: prepareChain(snapshot.istio.http, env), tcp: prepareChain(snapshot.istio.tcp, env) } : null,
    linkerd: snapshot.linkerd ? prepareLinkerd(snapshot.linkerd, snapshot.options) : null,
    customProviders: new Set(snapshot.options.customProviders),
    env,
  };
  prepared.set(snapshot, result);
  return result;
}

function decision(verdict: 'allow' | 'deny', reason: string, rule: IstioRule | null): Decision {
  return {
    verdict,
    reason,
    dialect: 'istio',
    policy: rule ? rule.policy : null,
    rule: rule ? rule.id : null,
    authorization: null,
    audit: null,
    shadow: null,
    effects: null,
  };
}

/**
 * The dry-run verdict. Each action's shadow engine holds only its dry-run policies (istio.md §12). A
 * shadow deny is reported over a shadow allow (DENY first), so a would-deny is never hidden.
 */
function shadowResult(p: PreparedChain, hits: readonly (CompiledRule | null)[]): ShadowResult | null {
  if (!p.hasShadowDeny && !p.hasShadowAllow) return null;
  const deny = hits[SHADOW_DENY];
  if (deny) return { verdict: 'deny', action: 'DENY', policy: deny.rule.policy, rule: deny.rule.id };
  if (p.hasShadowAllow) {
    const allow = hits[SHADOW_ALLOW];
    if (allow) return { verdict: 'allow', action: 'ALLOW', policy: allow.rule.policy, rule: allow.rule.id };
    return { verdict: 'deny', action: 'ALLOW', policy: null, rule: null };
  }
  return { verdict: 'allow', action: 'DENY', policy: null, rule: null };
}

// Scratch for one evaluation's per-group hits; evaluation is synchronous and never re-entered.
const hits: (CompiledRule | null)[] = new Array<CompiledRule | null>(GROUPS).fill(null);

/** Istio alone, on the chain for the request's protocol. */
export function evaluateIstio(p: PreparedChain, ctx: RequestContext, customProviders: ReadonlySet<string>): Decision {
  matchGroups(p.rules, ctx, hits, p.wanted, CANCELS, CUSTOM);
  // CUSTOM (ext_authz) runs first; Portcullis has no ext_authz client, so a match always fails closed.
  const custom = hits[CUSTOM];
  if (custom) {
    const configured = custom.rule.provider !== undefined && customProviders.has(custom.rule.provider);
    return decision('deny', configured ? 'custom_denied' : 'custom_no_provider', custom.rule);
  }
  let out: Decision;
  const denied = hits[DENY];
  if (denied) {
    out = decision('deny', 'deny_policy_matched', denied.rule);
  } else if (!p.chain.hasEnforcedAllow) {
    out = decision('allow', 'no_policies', null);
  } else {
    const allowed = hits[ALLOW];
    out = allowed ? decision('allow', 'allow_policy_matched', allowed.rule) : decision('deny', 'no_allow_policy_matched', null);
  }
  const audited = hits[AUDIT];
  if (audited) out.audit = { policy: audited.rule.policy, rule: audited.rule.id };
  out.shadow = shadowResult(p, hits);
  return out;
}

function noPolicies(): Decision {
  return { ...decision('allow', 'no_policies', null), dialect: null };
}

export function evaluate(snapshot: PolicySnapshot, ctx: RequestContext): Decision {
  const p = prepared.get(snapshot) ?? prepareSnapshot(snapshot);
  const istio = p.istio ? evaluateIstio(ctx.protocol === 'tcp' ? p.istio.tcp : p.istio.http, ctx, p.customProviders) : null;
  if (p.linkerd === null) return istio ?? noPolicies();
  // Istio is consulted first; the first dialect that does not allow decides and is named.
  if (istio !== null && istio.verdict !== 'allow') return istio;
  const linkerd = evaluateLinkerd(p.linkerd, ctx);
  if (istio === null) return linkerd;
  if (linkerd.verdict !== 'allow') {
    return { ...linkerd, audit: linkerd.audit ?? istio.audit, shadow: linkerd.shadow ?? istio.shadow };
  }
  // Both allow: name the dialect whose policy positively admitted the request, keep every side effect.
  const named = istio.reason === 'allow_policy_matched' ? istio : linkerd;
  return {
    ...named,
    authorization: linkerd.authorization,
    audit: istio.audit ?? linkerd.audit,
    shadow: istio.shadow ?? linkerd.shadow,
    effects: linkerd.effects,
  };
}
