// Owns the small syntaxes inside Istio policy values: the `*` string forms, IPs/CIDRs, ports, URI path
// templates, Go durations and booleans, header names. Follows istio/istio matcher/string.go, security.go.

import type { PathMatcher, StringMatcher, TemplateSegment } from '../../ir.js';
import { parseCidrStrict } from '../../match/cidr.js';

/**
 * Istio's generic string form (StringMatcherWithPrefix without a prefix): `*` = any non-empty value,
 * `x*` prefix, `*x` suffix, anything else (including a `*` in the middle) exact.
 */
export function stringForm(value: string, ignoreCase = false): StringMatcher {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (value === '*') return { kind: 'present' };
  if (value.startsWith('*')) return { kind: 'suffix', value: value.slice(1), ...ic };
  if (value.endsWith('*')) return { kind: 'prefix', value: value.slice(0, -1), ...ic };
  return { kind: 'exact', value, ...ic };
}

/** True when a `*` sits somewhere other than the first or last character (it is then a literal). */
export function hasMidStar(value: string): boolean {
  const inner = value.length > 2 ? value.slice(1, -1) : '';
  return inner.includes('*');
}

/** Escapes every RE2 metacharacter so the text matches literally. */
export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

// --- ports and addresses -------------------------------------------------------------------------

/** Decimal 0-65535, digits only (Istio ValidatePorts). */
export function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** An IP or CIDR as Istio (Go's netip) accepts it: no leading zeros, no zones. */
export function isValidIpOrCidr(text: string): boolean {
  // The matcher's own strict parser: what validation accepts is exactly what evaluation can match.
  return parseCidrStrict(text) !== null;
}

// --- paths ---------------------------------------------------------------------------------------

export function containsPathTemplate(path: string): boolean {
  return path.includes('{*}') || path.includes('{**}');
}

/** RFC 3986 pchar literal, without `*` (Istio IsValidLiteral). */
const literalSegment = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** Istio CheckValidPathTemplate; returns an error message or undefined. */
export function pathTemplateError(path: string): string | undefined {
  const isTemplate = containsPathTemplate(path);
  const globs = path.replace(/^\/+|\/+$/g, '').split('/');
  let sawMany = false;
  for (const glob of globs) {
    if (glob === '{*}' && !sawMany) continue;
    if (glob === '{**}' && !sawMany) { sawMany = true; continue; }
    if (/[{}]/.test(glob)) {
      return sawMany && (glob === '{*}' || glob === '{**}')
        ? `path template ${path}: {**} must be the last operator`
        : `path ${path}: '{' or '}' outside a whole-segment {*} or {**} operator`;
    }
    if (isTemplate && !literalSegment.test(glob)) {
      return `path template ${path}: segment "${glob}" is not a valid literal (RFC 3986 pchar, no '*', not empty)`;
    }
  }
  return undefined;
}

/** `paths` entry: URI template when it contains `{*}`/`{**}`, else the generic string form. */
export function pathForm(value: string): PathMatcher {
  if (!containsPathTemplate(value)) return stringForm(value);
  const segments: TemplateSegment[] = value.replace(/^\//, '').split('/').map((s): TemplateSegment => {
    if (s === '{*}') return { kind: 'one' };
    if (s === '{**}') return { kind: 'many' };
    return { kind: 'literal', value: s };
  });
  return { kind: 'template', segments };
}

// --- Go scalars ----------------------------------------------------------------------------------

/** Go strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go time.ParseDuration (also the protobuf `1.5s` form) -> milliseconds; undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const m = /^([-+]?)((?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!m) return undefined;
  let total = 0;
  const re = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/g;
  let part: RegExpExecArray | null;
  while ((part = re.exec(m[2] ?? '')) !== null) total += Number(part[1]) * (durationUnits[part[2] ?? ''] ?? 0);
  return m[1] === '-' ? -total : total;
}

/** Header names Istio accepts for outputs (ValidateStrictHTTPHeaderName). */
export function isStrictHeaderName(name: string): boolean {
  return /^[-_A-Za-z0-9]+$/.test(name);
}

/** RFC 9110 token: any header name a client can send. */
export function isHeaderToken(name: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name);
}
