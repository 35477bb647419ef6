// Owns policy-supplied regular expressions: always RE2 (linear time, PC-28), anchored for whole-value
// matching as Envoy's safe_regex and Linkerd's full-span check require. Never JS RegExp for policy input.
import RE2 from 're2';

/** Longest pattern Portcullis accepts from a policy; longer ones are refused at compile time. */
export const MAX_REGEX_LENGTH = 4096;

export class PolicyRegexError extends Error {
  constructor(readonly pattern: string, reason: string) {
    super(`invalid policy regex ${JSON.stringify(pattern.slice(0, 80))}: ${reason}`);
    this.name = 'PolicyRegexError';
  }
}

/** Null when `pattern` is an acceptable RE2 pattern, otherwise why not (for dialect validation). */
export function checkRegex(pattern: string): string | null {
  if (pattern.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RE2(`^(?:${pattern})$`, 'u');
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * `.*lit.*`, `lit.*`, `.*lit`, `lit` with a plain literal (the shape of Istio namespaces lowering: any, then /ns/foo/, then any):
 * answered with string search, exactly as RE2 would (`.` never matches a newline).
 */
function literalShape(pattern: string): ((value: string) => boolean) | null {
  const m = /^(\.\*)?((?:[A-Za-z0-9\x2f_:@=,'"<>!%&~ -]|\\[.\-\x2f*+?()[\]{}|^$\\])*)(\.\*)?$/.exec(pattern);
  if (!m) return null;
  const lit = (m[2] as string).replace(/\\(.)/g, '$1');
  const lead = m[1] !== undefined;
  const trail = m[3] !== undefined;
  if (!lead && !trail) return (v) => v === lit;
  const noNewline = (v: string) => v.indexOf('\n') === -1;
  if (lead && trail) return (v) => v.includes(lit) && noNewline(v);
  if (lead) return (v) => v.endsWith(lit) && noNewline(v.slice(0, v.length - lit.length));
  return (v) => v.startsWith(lit) && noNewline(v.slice(lit.length));
}

const META = '\\.[](){}*+?|^$';
const QUANTIFIERS = '*+?{';

/** Index of the first `|` outside groups and classes, or -1: such an alternation voids any common prefix. */
function topLevelBar(pattern: string): number {
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++; // a leading `]` is literal
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return i;
  }
  return -1;
}

/**
 * The literal text every whole match of `pattern` starts with (`/api/v1/.*` -> `/api/v1/`), or `''`: plain
 * characters and escaped punctuation up to the first operator, minus a last character that a quantifier
 * makes optional. The rule index files regex rules by it; the regex still decides.
 */
export function regexLiteralPrefix(pattern: string): string {
  if (topLevelBar(pattern) !== -1) return '';
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    let lit: string;
    let next: number;
    if (c === '\\') {
      const e = pattern[i + 1];
      if (e === undefined || /[A-Za-z0-9]/.test(e)) break; // \d, \x41, \pL, \Q...: classes and escapes, not one literal
      lit = e;
      next = i + 2;
    } else if (META.includes(c)) break;
    else {
      lit = String.fromCodePoint(pattern.codePointAt(i) as number); // a quantifier after it applies to the whole code point
      next = i + lit.length;
    }
    if (next < pattern.length && QUANTIFIERS.includes(pattern[next] as string)) break;
    out += lit;
    i = next;
  }
  return out;
}

/** Compiles once; the returned predicate is true when the pattern matches the WHOLE value. */
export function compileFullMatch(pattern: string, ignoreCase = false): (value: string) => boolean {
  if (pattern.length > MAX_REGEX_LENGTH) throw new PolicyRegexError(pattern, `longer than ${MAX_REGEX_LENGTH} characters`);
  const fast = ignoreCase ? null : literalShape(pattern);
  if (fast) return fast;
  let re: RE2;
  try {
    re = new RE2(`^(?:${pattern})$`, ignoreCase ? 'iu' : 'u');
  } catch (e) {
    throw new PolicyRegexError(pattern, e instanceof Error ? e.message : String(e));
  }
  return (value) => re.test(value);
}
