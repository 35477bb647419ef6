// Owns the compiled-matcher contract: a Matcher (IR data) becomes a closure over RequestContext once,
// at compile time; evaluation only calls closures.

import type { RequestContext } from '../context-types.js';
import type { PeerRegistry } from '../ir.js';

export type CompiledMatcher = (ctx: RequestContext) => boolean;

export interface MatcherEnv {
  /**
   * Extra JWT claims split on spaces before matching (RequestAuthentication spaceDelimitedClaims);
   * `scope` and `permission` are always split.
   */
  spaceDelimitedClaims?: readonly string[];
  /** The peer registry (CompileOptions.peers): which SPIFFE IDs are known, for `peer.registered`. Absent = empty. */
  peers?: PeerRegistry;
}
