// Owns the compiled-matcher contract: a Matcher (IR data) becomes a closure over RequestContext once,
// at compile time; evaluation only calls closures.

import type { RequestContext } from '../context-types.js';

export type CompiledMatcher = (ctx: RequestContext) => boolean;

export interface MatcherEnv {
  /**
   * Extra JWT claims split on spaces before matching (RequestAuthentication spaceDelimitedClaims);
   * `scope` and `permission` are always split.
   */
  spaceDelimitedClaims?: readonly string[];
}
