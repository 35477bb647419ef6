// Owns the matcher algebra dialects build rules with: and, or, not over IR matchers with constant folding, so a rule
// that can never match is recognised as `none` (and one that always matches as `any`) before it is compiled.
import type { Matcher } from './ir.js';

export const ANY: Matcher = { type: 'any' };
export const NONE: Matcher = { type: 'none' };

export function and(...of: Matcher[]): Matcher {
  const kept: Matcher[] = [];
  for (const m of of) {
    if (m.type === 'none') return NONE;
    if (m.type === 'any') continue;
    if (m.type === 'and') kept.push(...m.of); else kept.push(m);
  }
  return kept.length === 0 ? ANY : kept.length === 1 ? (kept[0] as Matcher) : { type: 'and', of: kept };
}

export function or(...of: Matcher[]): Matcher {
  const kept: Matcher[] = [];
  for (const m of of) {
    if (m.type === 'any') return ANY;
    if (m.type === 'none') continue;
    if (m.type === 'or') kept.push(...m.of); else kept.push(m);
  }
  return kept.length === 0 ? NONE : kept.length === 1 ? (kept[0] as Matcher) : { type: 'or', of: kept };
}

export function not(m: Matcher): Matcher {
  if (m.type === 'any') return NONE;
  if (m.type === 'none') return ANY;
  if (m.type === 'not') return m.of;
  return { type: 'not', of: m };
}
