// Owns Decision (what the engine concluded and why) and the branded Permit: the only value the data
// plane's forwarders accept, so nothing reaches the workload without an allow or an audit-mode would-deny.

import type { Dialect, PolicyRef } from './ir.js';

export type Verdict = 'allow' | 'deny' | 'unauthenticated' | 'bad_request' | 'not_found' | 'rate_limited';

/**
 * Stable reason codes, shared by code, decision logs and metrics. Add, never rename.
 * Istio: allow_policy_matched, no_policies (no ALLOW policy applies), deny_policy_matched,
 * no_allow_policy_matched, custom_no_provider, custom_denied. JWT: jwt_missing? (not a failure),
 * jwt_invalid, jwt_expired, jwt_not_yet_valid, jwt_unknown_issuer, jwt_bad_audience, jwt_multiple,
 * jwks_unavailable. Linkerd: authorized, unauthorized, route_not_found, rate_limited, redirect.
 * Request: bad_method, bad_path, nul_in_path, bad_authority, bad_header, encoded_slash_rejected.
 * Data plane: peer_identity_invalid, upstream_*.
 */
export type ReasonCode = string;

/**
 * A result computed and reported, never enforced: "what if the dry-run policies were enforced" (Istio
 * `istio.io/dry-run`), or what Calico would decide with its staged policies committed.
 */
export interface ShadowResult {
  verdict: 'allow' | 'deny';
  /**
   * Istio: the action whose dry-run policies produced this (DENY is reported over ALLOW when both exist).
   * `STAGED`: Calico's walk with the staged policies in place.
   */
  action: 'ALLOW' | 'DENY' | 'STAGED';
  policy: PolicyRef | null;
  rule: string | null;
}

export interface Decision {
  /** What the engine concluded. The core never picks a wire status: src/proxy/respond.ts maps verdict and reason. */
  verdict: Verdict;
  reason: ReasonCode;
  /** The dialect whose policy decided (for a deny: the one that denied). */
  dialect: Dialect | null;
  /** The tier of that dialect that decided (`http`, a Calico tier name, `admin`, ...); null or absent: none. */
  tier?: string | null;
  /** The policy that decided, or null (e.g. no policies at all). */
  policy: PolicyRef | null;
  /** Istio rule id `ns[..]-policy[..]-rule[i]`; Linkerd route name. */
  rule: string | null;
  /** Linkerd: the authorization that admitted (`authorizationpolicy/<name>`, `default/probe`). */
  authorization: string | null;
  /**
   * A `log` rule matched (Istio AUDIT, Calico Log: `log` is true; the request is recorded, the verdict unchanged), or
   * Linkerd audit admitted a would-deny (no `log`).
   */
  audit: { policy: PolicyRef; rule: string | null; log?: true } | null;
  /** Dry-run result, or null when no dry-run policy applies. */
  shadow: ShadowResult | null;
  /** Linkerd route filters to apply when forwarding (header modifiers) or the redirect to send. */
  effects: DecisionEffects | null;
}

export interface DecisionEffects {
  setHeaders: { name: string; value: string }[];
  addHeaders: { name: string; value: string }[];
  removeHeaders: string[];
  redirect: { status: number; location: string } | null;
  /** Linkerd local rate limit to apply after authorization (stateful; applied by the data plane). */
  rateLimit: { key: string; ref: PolicyRef; totalRps?: number; identityRps?: number; overrideRps?: number } | null;
}

declare const permitBrand: unique symbol;

/** Proof that a request may be forwarded. Only `issuePermit` makes one. */
export interface Permit {
  readonly [permitBrand]: true;
  readonly decision: Decision;
  /** True when forwarded only because the sidecar runs in audit mode (the decision was a deny). */
  readonly wouldDeny: boolean;
}

/**
 * An allow gets a Permit; in audit mode a policy deny (`deny`/`not_found`/`rate_limited` are policy
 * outcomes) gets one too, marked wouldDeny. Authentication and request-parse failures never do:
 * audit mode relaxes authorization, not identity or smuggling defenses (security.md §5).
 */
export function issuePermit(decision: Decision, mode: 'enforce' | 'audit'): Permit | null {
  if (decision.verdict === 'allow') return { decision, wouldDeny: false } as unknown as Permit;
  if (mode === 'audit' && (decision.verdict === 'deny' || decision.verdict === 'not_found' || decision.verdict === 'rate_limited')) {
    return { decision, wouldDeny: true } as unknown as Permit;
  }
  return null;
}
