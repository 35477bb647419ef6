// Owns writing Istio's composition as tiers: per filter chain one tier whose rules run CUSTOM -> AUDIT ->
// DENY -> ALLOW, each action by rule id, defaulting to deny when an ALLOW policy exists (istio.md §1, §12).
import type { PolicyTier, TierRule, TierScope } from '../../ir.js';
import type { IstioChain, IstioProgram, IstioRule } from './types.js';

function tierRule(r: IstioRule, customProviders: ReadonlySet<string>): TierRule {
  const base = { id: r.id, policy: r.policy, match: r.match, namedAs: 'rule' as const };
  switch (r.action) {
    // Portcullis has no ext_authz client, so a CUSTOM match always fails closed.
    case 'CUSTOM': {
      const out: TierRule = { ...base, action: 'custom', reason: r.provider !== undefined && customProviders.has(r.provider) ? 'custom_denied' : 'custom_no_provider' };
      if (r.provider !== undefined) out.provider = r.provider;
      return out;
    }
    case 'AUDIT': return { ...base, action: 'log', reason: 'audit' };
    case 'DENY': return { ...base, action: 'deny', reason: 'deny_policy_matched' };
    case 'ALLOW': return { ...base, action: 'allow', reason: 'allow_policy_matched' };
  }
}

/**
 * One chain as a scope. Dry-run rules go to the shadow list: as in Envoy's shadow engines, a dry-run DENY
 * match is reported over a dry-run ALLOW, so a would-deny is never hidden.
 */
function chainScope(chain: IstioChain, customProviders: ReadonlySet<string>): TierScope {
  const rule = (r: IstioRule) => tierRule(r, customProviders);
  // Envoy keeps RBAC policies in a map ordered by name: plain lexicographic order of the ids.
  const byId = (list: IstioRule[]) => [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const enforced = (list: IstioRule[]) => byId(list.filter((r) => !r.dryRun)).map(rule);
  const dryRun = (list: IstioRule[]) => byId(list.filter((r) => r.dryRun)).map(rule);
  const shadowRules = [...dryRun(chain.deny), ...dryRun(chain.allow)];
  const hasShadowAllow = chain.hasShadowAllow || chain.allow.some((r) => r.dryRun);
  return {
    ref: null,
    routes: null,
    rules: [...enforced(chain.custom), ...byId(chain.audit).map(rule), ...enforced(chain.deny), ...enforced(chain.allow)],
    otherwise: chain.hasEnforcedAllow
      ? { verdict: 'deny', reason: 'no_allow_policy_matched', policy: null }
      : { verdict: 'allow', reason: 'no_policies', policy: null },
    shadow: shadowRules.length > 0 || hasShadowAllow
      ? { rules: shadowRules, otherwise: hasShadowAllow ? { verdict: 'deny', action: 'ALLOW' } : { verdict: 'allow', action: 'DENY' } }
      : null,
    rateLimit: null,
  };
}

/** The http chain judges HTTP and gRPC requests, the tcp chain plain TCP connections. */
export function istioTiers(program: IstioProgram, customProviders: readonly string[]): PolicyTier[] {
  const providers = new Set(customProviders);
  const tier = (name: 'http' | 'tcp', chain: IstioChain, protocols: PolicyTier['protocols']): PolicyTier =>
    ({ dialect: 'istio', name, group: 'istio', protocols, ports: {}, anyPort: chainScope(chain, providers) });
  return [tier('http', program.http, ['http', 'grpc']), tier('tcp', program.tcp, ['tcp'])];
}
