// Owns flat matcher code: a rule's matcher as a conjunction of simple checks (exact, one-of and prefix
// comparisons of the peer principal, method and path, each maybe negated), ints in one typed array per rule
// list with the compared strings in one array, run in place by a loop.
// Large rule sets are bound by memory latency: a rule's closures, their contexts and the strings they
// compare are a dozen objects spread over the heap, while its flat code is a few adjacent cache lines.
// Any other part of a matcher calls its compiled closure (compile.ts), which stays the reference semantics.
import type { RequestContext } from '../context-types.js';
import type { Matcher } from '../ir.js';
import { flatten } from './compile.js';
import type { CompiledMatcher } from './types.js';

// A rule's code is [count, ...count checks]; each check is ITEM ints: [op, attr, negated, a, b].
const ITEM = 5;
const TRUE = 0;
const FALSE = 1;
/** a: a closure (the check's matcher compiled). */
const CALL = 2;
/** a: a string; the attribute equals it. */
const EQ = 3;
/** a, b: the first of b consecutive strings; the attribute equals one of them. */
const IN = 4;
/** a: a string; the attribute is non-empty and starts with it. */
const PREFIX = 5;
/**
 * a: a lower-cased string; b: a closure. The lower-cased attribute equals (starts with) it. ASCII letters
 * are folded in place; for a value with another character only toLowerCase() can say, so the closure does.
 */
const EQ_FOLDED = 6;
const PREFIX_FOLDED = 7;

const PRINCIPAL = 0;
const METHOD = 1;
const PATH = 2;

/** The flat code of a rule list. */
export interface FlatCode {
  code: Int32Array;
  strings: string[];
  calls: CompiledMatcher[];
}

type Check = [op: number, attr: number, negated: number, a: number, b: number];

/** Encodes matchers one after another; `add` returns where a matcher's code starts. */
export class FlatEncoder {
  private readonly code: number[] = [];
  private readonly strings: string[] = [];
  private readonly calls: CompiledMatcher[] = [];

  /** `closure` compiles what the flat code does not express (compile.ts's compileMatcher, memoized). */
  constructor(private readonly closure: (m: Matcher) => CompiledMatcher) {}

  add(m: Matcher): number {
    const start = this.code.length;
    const parts = m.type === 'and' ? flatten('and', m.of) : [m];
    this.code.push(parts.length);
    for (const part of parts) this.code.push(...this.check(part));
    return start;
  }

  finish(): FlatCode {
    // Fresh sequential copies, allocated together so a rule's strings sit side by side in memory. A policy's
    // strings are often slices of the YAML text, which V8 compares in its runtime, many times slower.
    const strings = this.strings.map((s) => s.split('').join(''));
    return { code: Int32Array.from(this.code), strings, calls: this.calls };
  }

  private check(m: Matcher): Check {
    if (m.type === 'not') {
      const inner = this.plain(m.of);
      if (inner !== null) return [inner[0], inner[1], 1, inner[3], inner[4]];
    }
    return this.plain(m) ?? [CALL, 0, 0, this.call(m), 0];
  }

  /** A check that is not negated, or null when the matcher needs its closure. */
  private plain(m: Matcher): Check | null {
    switch (m.type) {
      case 'any': return [TRUE, 0, 0, 0, 0];
      case 'none': return [FALSE, 0, 0, 0, 0];
      case 'or': {
        const values = oneOf(flatten('or', m.of));
        if (values === null) return null;
        const first = this.strings.length;
        for (const v of values.values) this.string(v);
        return [IN, values.attr, 0, first, values.values.length];
      }
      case 'peer.principal': case 'request.method': {
        const v = exact(m);
        if (v === undefined) return null;
        return v.value === '' && v.attr !== PRINCIPAL ? [FALSE, 0, 0, 0, 0] : [EQ, v.attr, 0, this.string(v.value), 0];
      }
      case 'request.path': {
        const pm = m.match;
        if (pm.kind !== 'exact' && pm.kind !== 'prefix') return null;
        if (pm.ignoreCase === true) return [pm.kind === 'exact' ? EQ_FOLDED : PREFIX_FOLDED, PATH, 0, this.string(pm.value.toLowerCase()), this.call(m)];
        if (pm.kind === 'prefix') return [PREFIX, PATH, 0, this.string(pm.value), 0];
        // An empty path is an absent one: it never matches.
        return pm.value === '' ? [FALSE, 0, 0, 0, 0] : [EQ, PATH, 0, this.string(pm.value), 0];
      }
      default: return null;
    }
  }

  private string(value: string): number {
    this.strings.push(value);
    return this.strings.length - 1;
  }

  private call(m: Matcher): number {
    this.calls.push(this.closure(m));
    return this.calls.length - 1;
  }
}

/** An exact, case-sensitive principal, method or path leaf: its attribute and value. */
function exact(m: Matcher): { attr: number; value: string } | undefined {
  if (m.type !== 'peer.principal' && m.type !== 'request.method' && m.type !== 'request.path') return undefined;
  if (m.match.kind !== 'exact' || m.match.ignoreCase === true) return undefined;
  return { attr: m.type === 'peer.principal' ? PRINCIPAL : m.type === 'request.method' ? METHOD : PATH, value: m.match.value };
}

/** An `or` of exact leaves on one attribute (`methods: [GET, HEAD]`); empty methods and paths never match. */
function oneOf(parts: readonly Matcher[]): { attr: number; values: string[] } | null {
  const leaves = parts.map(exact);
  const attr = leaves[0]?.attr;
  if (attr === undefined || leaves.some((l) => l === undefined || l.attr !== attr)) return null;
  const values = (leaves as { value: string }[]).map((l) => l.value).filter((v) => v !== '' || attr === PRINCIPAL);
  return { attr, values };
}

const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);

/** `value.toLowerCase()` equals (or, `prefix`, starts with) `want`; undefined when only toLowerCase() can say. */
function foldedCompare(value: string, want: string, prefix: boolean): boolean | undefined {
  const n = Math.min(want.length, value.length);
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    // Lower-casing a non-ASCII character may change the length: from there on only toLowerCase() can say.
    if (c >= 0x80) return undefined;
    if (fold(c) !== want.charCodeAt(i)) return false;
  }
  if (value.length === want.length || (prefix && value.length > want.length)) return true;
  for (let i = n; i < value.length; i++) if (value.charCodeAt(i) >= 0x80) return undefined;
  return false;
}

/** Runs the rule code at `start`: the same answer as the closure compiled from the rule's matcher. */
export function runFlat(flat: FlatCode, start: number, ctx: RequestContext): boolean {
  const code = flat.code;
  const strings = flat.strings;
  const end = start + 1 + (code[start] as number) * ITEM;
  for (let pc = start + 1; pc < end; pc += ITEM) {
    let value: string | null;
    switch (code[pc + 1]) {
      case PRINCIPAL: value = ctx.peer === null ? null : ctx.peer.principal; break;
      case METHOD: value = ctx.method; break;
      default: value = ctx.path;
    }
    let ok: boolean;
    switch (code[pc]) {
      case TRUE: ok = true; break;
      case FALSE: ok = false; break;
      case CALL: ok = (flat.calls[code[pc + 3] as number] as CompiledMatcher)(ctx); break;
      case EQ: ok = value !== null && value === strings[code[pc + 3] as number]; break;
      case IN: {
        ok = false;
        if (value === null) break;
        const to = (code[pc + 3] as number) + (code[pc + 4] as number);
        for (let i = code[pc + 3] as number; i < to; i++) {
          if (value === strings[i]) {
            ok = true;
            break;
          }
        }
        break;
      }
      case PREFIX: ok = value !== null && value.length > 0 && value.startsWith(strings[code[pc + 3] as number] as string); break;
      default: {
        // EQ_FOLDED, PREFIX_FOLDED
        if (value === null || value.length === 0) {
          ok = false;
          break;
        }
        ok = foldedCompare(value, strings[code[pc + 3] as number] as string, code[pc] === PREFIX_FOLDED)
          ?? (flat.calls[code[pc + 4] as number] as CompiledMatcher)(ctx);
      }
    }
    if (ok === (code[pc + 2] === 1)) return false;
  }
  return true;
}
