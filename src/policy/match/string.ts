// Owns StringMatcher compilation (exact / prefix / suffix / present / regex) into string predicates.
// Follows Envoy's StringMatcher (istio.md §4): `present` is Istio's `*`, any non-empty value.
import type { StringMatcher } from '../ir.js';
import { compileFullMatch } from './regex.js';

export type StringPredicate = (value: string) => boolean;

/** `forceIgnoreCase` is for attributes compared case-insensitively whatever the policy says (hosts). */
export function compileString(m: StringMatcher, forceIgnoreCase = false): StringPredicate {
  switch (m.kind) {
    case 'present':
      return (v) => v.length > 0;
    case 'regex':
      return compileFullMatch(m.pattern, forceIgnoreCase);
    case 'exact':
    case 'prefix':
    case 'suffix': {
      const ignoreCase = forceIgnoreCase || m.ignoreCase === true;
      const want = ignoreCase ? m.value.toLowerCase() : m.value;
      if (m.kind === 'exact') return ignoreCase ? (v) => v.toLowerCase() === want : (v) => v === want;
      if (m.kind === 'prefix') return ignoreCase ? (v) => v.toLowerCase().startsWith(want) : (v) => v.startsWith(want);
      return ignoreCase ? (v) => v.toLowerCase().endsWith(want) : (v) => v.endsWith(want);
    }
  }
}
