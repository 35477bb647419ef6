// Owns the Istio dialect's own lowering types: AuthorizationPolicy rules grouped per filter chain, as
// Envoy's RBAC filters hold them, before tiers.ts writes them as tiers of the PolicyProgram (istio.md §1).
import type { Matcher, PolicyRef } from '../../ir.js';

export type IstioAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface IstioRule {
  /** Envoy-style id: `ns[<ns>]-policy[<name>]-rule[<i>]`. Rules are evaluated in this id's order. */
  id: string;
  policy: PolicyRef;
  /** Index of the rule inside spec.rules. */
  index: number;
  action: IstioAction;
  /** `istio.io/dry-run: "true"`: evaluated into the shadow result, never enforced. */
  dryRun: boolean;
  /** CUSTOM only: spec.provider.name. */
  provider?: string;
  /** OR(from) AND OR(to) AND AND(when), already combined. */
  match: Matcher;
}

/** Rules of one filter chain. HTTP and TCP ports get different lowerings (HTTP-only fields). */
export interface IstioChain {
  custom: IstioRule[];
  deny: IstioRule[];
  allow: IstioRule[];
  audit: IstioRule[];
  /** True when at least one enforced (not dry-run) ALLOW policy selects the workload, even with zero rules. */
  hasEnforcedAllow: boolean;
  /** True when at least one dry-run ALLOW policy selects the workload. */
  hasShadowAllow: boolean;
}

export interface IstioProgram {
  http: IstioChain;
  tcp: IstioChain;
}
