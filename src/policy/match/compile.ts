// Owns compileMatcher: IR Matcher -> closure over RequestContext, built once at compile time.
// PLACEHOLDER until the engine lands: every matcher is false (fails closed for ALLOW).
import type { Matcher } from '../ir.js';
import type { CompiledMatcher, MatcherEnv } from './types.js';

export function compileMatcher(_matcher: Matcher, _env: MatcherEnv): CompiledMatcher {
  return () => false;
}
