// Owns path matchers beyond plain strings: Istio URI templates (Envoy uri_template: `{*}` one non-empty
// segment, `{**}` any run of characters including `/`) and Linkerd/Gateway API segment-wise PathPrefix.
import type { PathMatcher, TemplateSegment } from '../ir.js';
import { compileString, type StringPredicate } from './string.js';

type Piece = string | 'ONE' | 'MANY';

const ONE = 'ONE' as const;
const MANY = 'MANY' as const;

/** `/` + segments joined by `/`, as literal runs and operators (`/foo/{*}/bar` -> ['/foo/', ONE, '/bar']). */
export function templatePieces(segments: readonly TemplateSegment[]): { pieces: Piece[]; literal: boolean[] } {
  const pieces: Piece[] = [];
  const literal: boolean[] = [];
  let buf = '';
  segments.forEach((seg) => {
    buf += '/';
    if (seg.kind === 'literal') {
      buf += seg.value;
      return;
    }
    pieces.push(buf);
    literal.push(true);
    buf = '';
    pieces.push(seg.kind === 'one' ? ONE : MANY);
    literal.push(false);
  });
  if (segments.length === 0) buf = '/';
  if (buf.length > 0) {
    pieces.push(buf);
    literal.push(true);
  }
  return { pieces, literal };
}

/** The literal text before the first operator: every matching path starts with it (used by the index). */
export function templateLiteralPrefix(segments: readonly TemplateSegment[]): string {
  const { pieces, literal } = templatePieces(segments);
  return literal[0] === true ? (pieces[0] as string) : '';
}

function matchPieces(pieces: readonly Piece[], literal: readonly boolean[], pi: number, path: string, pos: number, budget: { n: number }): boolean {
  if (--budget.n < 0) return false;
  if (pi === pieces.length) return pos === path.length;
  const piece = pieces[pi] as string;
  if (literal[pi]) {
    return path.startsWith(piece, pos) && matchPieces(pieces, literal, pi + 1, path, pos + piece.length, budget);
  }
  if (piece === ONE) {
    const slash = path.indexOf('/', pos);
    const end = slash === -1 ? path.length : slash;
    return end > pos && matchPieces(pieces, literal, pi + 1, path, end, budget);
  }
  // MANY: validation puts it last among operators, so only a literal tail can follow; try every split.
  for (let end = path.length; end >= pos; end--) {
    if (matchPieces(pieces, literal, pi + 1, path, end, budget)) return true;
  }
  return false;
}

export function compileTemplate(segments: readonly TemplateSegment[]): StringPredicate {
  const { pieces, literal } = templatePieces(segments);
  // The budget bounds pathological (unvalidated) templates with several `{**}`; validated ones stay linear.
  return (path) => matchPieces(pieces, literal, 0, path, 0, { n: 100_000 });
}

function trimTrailingSlashes(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x2f) end--;
  return s.slice(0, end);
}

/** Linkerd PathPrefix: `/` matches all; else both sides lose trailing `/` and the rest is empty or `/...`. */
export function compileSegmentPrefix(value: string): StringPredicate {
  const prefix = trimTrailingSlashes(value);
  if (prefix.length === 0) return (path) => path.startsWith('/');
  return (path) => {
    const p = trimTrailingSlashes(path);
    if (!p.startsWith(prefix)) return false;
    return p.length === prefix.length || p.charCodeAt(prefix.length) === 0x2f;
  };
}

export function compilePath(m: PathMatcher): StringPredicate {
  if (m.kind === 'template' && m.ignoreCase) {
    const lowered = compileTemplate(m.segments.map((s) => (s.kind === 'literal' ? { kind: 'literal', value: s.value.toLowerCase() } : s)));
    return (path) => lowered(path.toLowerCase());
  }
  if (m.kind === 'template') return compileTemplate(m.segments);
  if (m.kind === 'segment-prefix') return compileSegmentPrefix(m.value);
  return compileString(m);
}
