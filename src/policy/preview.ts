// Owns writing one dialect's tier walk (an allow or deny ends it, a pass goes on to the next tier) as a single
// first-match list of shadow rules: how a "what if" walk (Calico's staged policies committed) rides on a scope's shadow.
import type { Matcher, PolicyTier, ShadowRules, TierRule } from './ir.js';
import { ANY, and, not, or } from './matcher-algebra.js';

/**
 * The walk of `tiers` (one group, judged by their any-port scopes) as shadow rules: a rule after a pass of its tier
 * holds only where no such pass matched (the pass skipped the rest of the tier); a tier's default becomes a last rule
 * for what none of its passes matched; `log` rules decide nothing and are left out. What every tier passed is allowed.
 */
export function walkAsShadow(tiers: readonly PolicyTier[], action: ShadowRules['otherwise']['action']): ShadowRules {
  const rules: TierRule[] = [];
  tiers.forEach((tier, i) => {
    const scope = tier.anyPort;
    const passes: Matcher[] = [];
    let notPassed: Matcher = ANY;
    for (const r of scope.rules) {
      if (r.action === 'log' || r.action === 'audit') continue;
      if (r.action === 'pass') {
        passes.push(r.match);
        notPassed = not(or(...passes));
        continue;
      }
      rules.push(notPassed === ANY ? r : { ...r, match: and(r.match, notPassed) });
    }
    const otherwise = scope.otherwise;
    if (otherwise.verdict === 'pass') return;
    if (otherwise.policy === null) {
      // An unnamed allow at the end reads the same as the shadow's own otherwise; anywhere else it would need a name.
      if (otherwise.verdict === 'allow' && i === tiers.length - 1) return;
      throw new Error(`tier ${tier.name}: a default ${otherwise.verdict} needs a policy to be named in a shadow result`);
    }
    rules.push({
      id: `tier[${tier.name}]-${otherwise.reason}`, policy: otherwise.policy, action: otherwise.verdict, match: notPassed,
      reason: otherwise.reason, namedAs: 'rule',
    });
  });
  return { rules, otherwise: { verdict: 'allow', action } };
}
