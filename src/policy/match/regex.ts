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
