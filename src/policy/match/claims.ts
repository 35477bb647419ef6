// Owns JWT claim lookup for Istio `request.auth.claims[a][b]`: a string, or any string element of a list;
// numbers, booleans and objects never match (D-COND); space-delimited claims are split before matching.
import type { VerifiedJwt } from '../context-types.js';
import type { StringPredicate } from './string.js';

/** Claims Istio always splits on spaces (istio.md §10). */
export const ALWAYS_SPACE_DELIMITED = ['scope', 'permission'] as const;

export function lookupClaim(claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let cur: unknown = claims;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function compileClaim(path: readonly string[], pred: StringPredicate, spaceDelimited: ReadonlySet<string>): (jwt: VerifiedJwt | null) => boolean {
  const split = path.length === 1 && spaceDelimited.has(path[0] as string);
  const test = (s: string): boolean => {
    if (!split) return pred(s);
    for (const part of s.split(' ')) if (part.length > 0 && pred(part)) return true;
    return false;
  };
  return (jwt) => {
    if (jwt === null) return false;
    const v = lookupClaim(jwt.claims, path);
    if (typeof v === 'string') return test(v);
    if (Array.isArray(v)) {
      for (const item of v) if (typeof item === 'string' && test(item)) return true;
    }
    return false;
  };
}
