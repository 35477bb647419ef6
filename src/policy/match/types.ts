// Owns the compiled-matcher contract: a Matcher (IR data) becomes a closure over RequestContext once,
// at compile time; evaluation only calls closures.

import type { RequestContext } from '../context-types.js';

export type CompiledMatcher = (ctx: RequestContext) => boolean;

export interface MatcherEnv {
  /** Linkerd control-plane namespace for SPIFFE -> Linkerd identity names (`linkerd`). */
  linkerdControlPlaneNamespace: string;
}
