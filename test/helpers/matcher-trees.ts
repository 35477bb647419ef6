// Owns the property tests' matcher trees: `and`, `or` and `not` (policy/ir.ts) over the leaf matchers a test
// supplies, as one fast-check arbitrary, so every compiler and index test grows its trees the same way.
import fc from 'fast-check';
import type { Matcher } from '../../src/policy/ir.js';

export function matcherTrees(leaves: readonly fc.Arbitrary<Matcher>[], options: { withCrossShrink?: boolean } = {}): fc.Arbitrary<Matcher> {
  return fc.letrec<{ m: Matcher }>((tie) => ({
    m: fc.oneof({ depthSize: 'small', ...options }, ...leaves,
      fc.array(tie('m'), { maxLength: 3 }).map((of): Matcher => ({ type: 'and', of })),
      fc.array(tie('m'), { maxLength: 3 }).map((of): Matcher => ({ type: 'or', of })),
      tie('m').map((of): Matcher => ({ type: 'not', of }))),
  })).m;
}
