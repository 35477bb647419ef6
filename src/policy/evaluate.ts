// Owns evaluate(snapshot, context[, tracer]) -> Decision: the one evaluator over every dialect's tiers.
// Synchronous, deterministic, allocation-light; the optional tracer reports each step for `explain`.
import type { RequestContext } from './context-types.js';
import type { Decision, DecisionEffects, ShadowResult } from './decision.js';
import { hasEffects, headerEditEffects, mergeEffects, rateLimitEffect, routeEffects } from './effects.js';
import type { HeaderEdit, PolicyTier, Route, TierRule, TierScope } from './ir.js';
import type { PolicySnapshot } from './snapshot.js';
import { collect, scanCandidates, testRule, type CompiledRule, type RuleSet } from './match/rule-index.js';
import { selectRoute, type RouteHit } from './match/routes.js';
import { DECIDE, EDIT, FALLBACK, LOG, PROTOCOL_BIT, SHADOW, type CompiledList, type CompiledScope, type CompiledTier } from './program.js';

/** Receives every step of one evaluation, in order (explain); evaluation without a tracer skips no work it needs. */
export interface Tracer {
  /** A tier judges the request with the scope for its port. */
  scope(tier: PolicyTier, scope: TierScope): void;
  /** The route selected by the scope's route table (null: none matched, the request is not found). */
  route(route: Route | null, score: readonly number[] | null): void;
  /** A rule was tested (every rule of the list is, when tracing). `shadow` = a dry-run rule. */
  rule(rule: TierRule, matched: boolean, shadow: boolean): void;
  /** Anything else worth a line (a refused connection, the rate limit applied). */
  note(text: string): void;
  /** What the tier concluded (`pass` = no opinion). */
  outcome(tier: PolicyTier, verdict: 'allow' | 'deny' | 'not_found' | 'pass', reason: string): void;
}

/** What a scan of one rule list found; one shared object (evaluation is synchronous and never re-entered). */
interface ScanState {
  /** First matching `log` rule before the decision. */
  mark: CompiledRule | null;
  /** First matching allow/deny/pass/custom rule. */
  decided: CompiledRule | null;
  /** First matching `audit` rule (admits only when nothing decided). */
  fallback: CompiledRule | null;
  /** First matching dry-run rule. */
  shadowHit: CompiledRule | null;
  /** The edits of every matching edit rule before the decision, in rule order (reused: copied when applied). */
  edits: HeaderEdit[];
}

const state: ScanState = { mark: null, decided: null, fallback: null, shadowHit: null, edits: [] };

/**
 * Records a rule's match if the scan still needs it; returns true when the scan can stop. A decision stops
 * it unless dry-run rules are still pending; an external authorizer's deny (custom) stops everything.
 */
function take(r: CompiledRule, s: ScanState, hasShadow: boolean): boolean {
  switch (r.kind) {
    case LOG:
      if (s.decided === null && s.mark === null) s.mark = r;
      return false;
    case EDIT:
      if (s.decided !== null) return false;
      s.mark ??= r;
      s.edits.push(r.rule.edit as HeaderEdit);
      return false;
    case DECIDE:
      if (s.decided !== null) return false;
      s.decided = r;
      return r.action === 'custom' || !hasShadow || s.shadowHit !== null;
    case FALLBACK:
      if (s.decided === null && s.fallback === null) s.fallback = r;
      return false;
    default:
      if (s.shadowHit !== null) return false;
      s.shadowHit = r;
      return s.decided !== null;
  }
}

/** Whether a rule of this kind can still change the scan's result (else it is not tested). */
function needed(kind: number, s: ScanState): boolean {
  if (kind === SHADOW) return s.shadowHit === null;
  if (s.decided !== null) return false;
  return kind === DECIDE || kind === EDIT || (kind === LOG ? s.mark === null : s.fallback === null);
}

function scan(list: CompiledList, ctx: RequestContext, tracer: Tracer | undefined): ScanState {
  const s = state;
  s.mark = s.decided = s.fallback = s.shadowHit = null;
  if (s.edits.length > 0) s.edits.length = 0; // setting an array's length is a runtime call: skip it when empty
  const hasShadow = list.hasShadow;
  if (tracer) {
    // Explain tests every rule in order (no index), so each one's outcome can be shown.
    let stopped = false;
    for (const r of list.set.rules) {
      const ok = r.test(ctx);
      tracer.rule(r.rule, ok, r.kind === SHADOW);
      if (!stopped && ok) stopped = take(r, s, hasShadow);
    }
    return s;
  }
  scanShadow = hasShadow;
  scanCandidates(list.set, collect(list.set, ctx), ctx, acceptForScan);
  return s;
}

/** `hasShadow` of the list being scanned: module state, so the hot path passes a function, not a closure. */
let scanShadow = false;
// The rule object is read only once the rule matches: kinds and flat code sit in the index's arrays.
function acceptForScan(set: RuleSet, order: number, ctx: RequestContext): boolean {
  return needed(set.kinds[order] as number, state) && testRule(set, order, ctx) && take(set.rules[order] as CompiledRule, state, scanShadow);
}

function shadowResult(scope: TierScope, hit: CompiledRule | null): ShadowResult | null {
  const shadow = scope.shadow;
  if (shadow === null) return null;
  if (hit !== null) {
    const deny = hit.action === 'deny';
    const action = shadow.otherwise.action === 'STAGED' ? 'STAGED' : deny ? 'DENY' : 'ALLOW';
    return { verdict: deny ? 'deny' : 'allow', action, policy: hit.policy, rule: hit.id };
  }
  return { verdict: shadow.otherwise.verdict, action: shadow.otherwise.action, policy: null, rule: null };
}

/**
 * Whether the last tier's allow came from a rule (not from its default): such an allow names the decision; and the
 * `log` mark and shadow result of a tier that passed (a Calico Log before a Pass still records the request; Calico's
 * staged policies are previewed by a tier that always passes).
 */
const lastTier: { positive: boolean; passMark: Decision['audit']; passShadow: ShadowResult | null } = { positive: false, passMark: null, passShadow: null };

function result(tier: PolicyTier, verdict: Decision['verdict'], reason: string, scope: TierScope): Decision {
  return {
    verdict, reason, dialect: tier.dialect, tier: tier.name, policy: scope.ref, rule: null, authorization: null,
    audit: null, shadow: null, effects: null,
  };
}

/** One tier's conclusion for the request; `pass` means the tier has no opinion. */
function evaluateTier(ct: CompiledTier, ctx: RequestContext, tracer: Tracer | undefined): Decision | 'pass' {
  const tier = ct.tier;
  const cs: CompiledScope = ct.ports.size === 0 ? ct.anyPort : ct.ports.get(ctx.port) ?? ct.anyPort;
  const scope = cs.scope;
  lastTier.positive = false;
  lastTier.passMark = null;
  lastTier.passShadow = null;
  tracer?.scope(tier, scope);
  if (ctx.protocol === 'tcp' && scope.refuseConnections !== undefined) {
    // A scope that only speaks HTTP skips protocol detection: a non-HTTP stream fails to parse and is closed.
    tracer?.note('a non-HTTP connection on a scope that only speaks HTTP is refused');
    return result(tier, 'deny', scope.refuseConnections, scope);
  }
  let list = cs.list;
  let hit: RouteHit | undefined;
  if (cs.routes !== null && ctx.protocol !== 'tcp') {
    hit = selectRoute(cs.routes, ctx);
    tracer?.route(hit ? hit.route : null, hit ? hit.score : null);
    if (!hit) return result(tier, 'not_found', 'route_not_found', scope);
    list = cs.byRoute.get(hit.route) as CompiledList;
  }
  const routeLabel = hit ? hit.route.label : null;
  const { decided: d, fallback, mark, shadowHit } = scan(list, ctx, tracer);
  // An external authorizer's deny ends the evaluation before any mark or shadow result.
  if (d !== null && d.action === 'custom') return named(result(tier, 'deny', d.reason, scope), d, routeLabel);
  if (d !== null && d.action === 'pass') return passWith(mark, scope, shadowHit);
  let out: Decision;
  if (d !== null && d.action === 'deny') {
    out = named(result(tier, 'deny', d.reason, scope), d, routeLabel);
  } else if (d !== null || fallback !== null) {
    out = admitted(tier, cs, (d ?? fallback) as CompiledRule, d === null, hit, routeLabel, ctx, tracer);
  } else {
    const otherwise = scope.otherwise;
    if (otherwise.verdict === 'pass') return passWith(mark, scope, shadowHit);
    out = result(tier, otherwise.verdict, otherwise.reason, scope);
    out.policy = otherwise.policy;
    out.rule = routeLabel;
  }
  if (mark !== null) out.audit = { policy: mark.policy, rule: mark.id, log: true };
  // Header edits of matching rules apply to a request the tier admits (Cilium headerMatches ADD/DELETE/REPLACE).
  if (state.edits.length > 0 && out.verdict === 'allow') {
    const edited = headerEditEffects(state.edits);
    tracer?.note(`header edits on the forwarded request: ${state.edits.map((e) => (e.op === 'remove' ? `remove ${e.name}` : `${e.op} ${e.name}: ${e.value}`)).join('; ')}`);
    out.effects = out.effects === null ? edited : mergeEffects(out.effects, edited);
  }
  out.shadow = shadowResult(scope, shadowHit);
  return out;
}

function passWith(mark: CompiledRule | null, scope: TierScope, shadowHit: CompiledRule | null): 'pass' {
  if (mark !== null) lastTier.passMark = { policy: mark.policy, rule: mark.id, log: true };
  if (scope.shadow !== null) lastTier.passShadow = shadowResult(scope, shadowHit);
  return 'pass';
}

function named(out: Decision, rule: CompiledRule, routeLabel: string | null): Decision {
  out.policy = rule.policy;
  if (rule.namedAs === 'authorization') {
    out.authorization = rule.id;
    out.rule = routeLabel;
  } else {
    out.rule = rule.id;
  }
  return out;
}

function admitted(tier: PolicyTier, cs: CompiledScope, r: CompiledRule, audited: boolean, hit: RouteHit | undefined, routeLabel: string | null, ctx: RequestContext, tracer: Tracer | undefined): Decision {
  lastTier.positive = true;
  // Only a routed request has effects (route filters, rate limit): the common case allocates nothing more.
  let effects: DecisionEffects | null = null;
  if (hit) {
    effects = routeEffects(hit, ctx);
    if (cs.rateLimit) {
      effects.rateLimit = rateLimitEffect(cs.rateLimit, ctx);
      tracer?.note(`rate limit ${cs.rateLimit.limit.ref.name}: total ${effects.rateLimit.totalRps ?? '-'}, ${effects.rateLimit.overrideRps !== undefined ? `override ${effects.rateLimit.overrideRps}` : `identity ${effects.rateLimit.identityRps ?? '-'}`} rps`);
    }
  }
  const out = named(result(tier, 'allow', !audited && effects?.redirect ? 'redirect' : r.reason, cs.scope), r, routeLabel);
  // An audit admit is a would-deny: marked against the scope and route that did not authorize it.
  if (audited) out.audit = { policy: cs.scope.ref ?? r.policy, rule: routeLabel };
  out.effects = effects !== null && hasEffects(effects) ? effects : null;
  return out;
}

const NO_POLICIES: Decision = Object.freeze({
  verdict: 'allow', reason: 'no_policies', dialect: null, tier: null, policy: null, rule: null, authorization: null, audit: null, shadow: null, effects: null,
}) as Decision;

/**
 * Walks the tiers in order. A deny (or not found) ends the walk and is the decision; an allow ends its
 * group and the next group judges (defense in depth); a pass goes to the next tier of the group. When every
 * group allows, the decision names the first allow that came from a rule, carrying every tier's marks.
 */
export function evaluate(snapshot: PolicySnapshot, ctx: RequestContext, tracer?: Tracer): Decision {
  const tiers = snapshot.compiled.tiers;
  const bit = PROTOCOL_BIT[ctx.protocol];
  let chosen: Decision | null = null;
  let chosenPositive = false;
  let audit: Decision['audit'] = null;
  let shadow: Decision['shadow'] = null;
  let effects: Decision['effects'] = null;
  let authorization: string | null = null;
  let allows = 0;
  /** The first `log` mark and shadow result of a tier that passed: they stay on whatever decides later. */
  let passed: Decision['audit'] = null;
  let passedShadow: Decision['shadow'] = null;
  let i = 0;
  while (i < tiers.length) {
    const ct = tiers[i] as CompiledTier;
    if ((ct.protocols & bit) === 0) { i++; continue; }
    const r = evaluateTier(ct, ctx, tracer);
    if (r === 'pass') {
      tracer?.outcome(ct.tier, 'pass', 'pass');
      passed ??= lastTier.passMark;
      passedShadow ??= lastTier.passShadow;
      i++;
      continue;
    }
    tracer?.outcome(ct.tier, r.verdict as 'allow' | 'deny' | 'not_found', r.reason);
    if (r.verdict !== 'allow') {
      // The deciding tier's own marks first, then those of the tiers that allowed before it.
      if (allows > 0) {
        r.audit ??= audit;
        r.shadow ??= shadow;
      }
      r.audit ??= passed;
      r.shadow ??= passedShadow;
      return r;
    }
    allows++;
    if (chosen === null || (lastTier.positive && !chosenPositive)) {
      chosen = r;
      chosenPositive = lastTier.positive;
    }
    audit ??= r.audit;
    shadow ??= r.shadow;
    if (r.effects !== null) effects = effects === null ? r.effects : mergeEffects(effects, r.effects);
    authorization ??= r.authorization;
    i = ct.nextGroup;
  }
  audit ??= passed;
  shadow ??= passedShadow;
  if (chosen === null) return passed === null && shadow === null ? { ...NO_POLICIES } : { ...NO_POLICIES, audit: passed, shadow };
  if (allows === 1 && chosen.audit === audit && chosen.shadow === shadow) return chosen;
  return { ...chosen, authorization, audit, shadow, effects };
}
