// Owns evaluate(snapshot, context) -> Decision: synchronous, deterministic, allocation-light.
// PLACEHOLDER until the engine lands: denies everything (fail closed).
import type { RequestContext } from './context-types.js';
import type { Decision } from './decision.js';
import type { PolicySnapshot } from './ir.js';

export function prepareSnapshot(_snapshot: PolicySnapshot): void {}

export function evaluate(_snapshot: PolicySnapshot, _ctx: RequestContext): Decision {
  return { verdict: 'deny', status: 403, grpcStatus: undefined, reason: 'engine_unavailable', dialect: null, policy: null, rule: null, authorization: null, audit: null, shadow: null, effects: null };
}
