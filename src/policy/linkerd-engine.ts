// Owns Linkerd evaluation over the IR: server by port, best route (404), authorizations (403), filters,
// rate-limit effects. PLACEHOLDER until the Linkerd dialect lands.
import type { RequestContext } from './context-types.js';
import type { Decision } from './decision.js';
import type { CompileOptions, LinkerdProgram } from './ir.js';

export interface PreparedLinkerd {
  program: LinkerdProgram;
}

export function prepareLinkerd(program: LinkerdProgram, _options: CompileOptions): PreparedLinkerd {
  return { program };
}

export function evaluateLinkerd(_prepared: PreparedLinkerd, _ctx: RequestContext): Decision {
  return { verdict: 'deny', status: 403, grpcStatus: undefined, reason: 'engine_unavailable', dialect: 'linkerd', policy: null, rule: null, authorization: null, audit: null, shadow: null, effects: null };
}
