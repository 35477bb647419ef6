// Owns path normalization in Istio's four modes (NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES):
// the one normalized path is matched AND forwarded. Follows Envoy normalize_path/merge_slashes (istio.md §6).
import type { PathNormalization } from './ir.js';

const HEX = /^[0-9A-Fa-f]{2}$/;

/** RFC 3986 unreserved characters: the only ones BASE decodes from %HH. */
function isUnreservedCode(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39)
    || code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e;
}

/** True when every `%` starts a well-formed `%HH` escape (a stray `%` would make decoding ambiguous). */
export function hasValidPercentEncoding(path: string): boolean {
  let i = path.indexOf('%');
  while (i !== -1) {
    if (!HEX.test(path.slice(i + 1, i + 3))) return false;
    i = path.indexOf('%', i + 3);
  }
  return true;
}

/** Decodes %HH escapes once, only for the characters `shouldDecode` accepts; hex case of the rest is kept. */
function decodeSome(path: string, shouldDecode: (code: number) => boolean): string {
  if (path.indexOf('%') === -1) return path;
  let out = '';
  let last = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3);
    if (!HEX.test(hex)) continue;
    const code = parseInt(hex, 16);
    if (!shouldDecode(code)) continue;
    out += path.slice(last, i) + String.fromCharCode(code);
    last = i + 3;
    i += 2;
  }
  return last === 0 ? path : out + path.slice(last);
}

const isEncodedSlash = (code: number) => code === 0x2f || code === 0x5c;

/**
 * A dot segment, including the path-parameter forms `.;x` and `..;x` that servlet containers resolve
 * as `.`/`..` (Shiro CVE-2020-1957): treating them as dot segments keeps check and upstream in step.
 */
function dotKind(segment: string): 0 | 1 | 2 {
  const semi = segment.indexOf(';');
  const core = semi === -1 ? segment : segment.slice(0, semi);
  if (core === '.') return 1;
  if (core === '..') return 2;
  return 0;
}

/** RFC 3986 §5.2.4 remove_dot_segments over `/`-separated segments (empty segments are kept). */
function removeDotSegments(path: string): string {
  const input = path.split('/');
  // input[0] is '' for an absolute path.
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i] as string;
    const kind = dotKind(seg);
    const isLast = i === input.length - 1;
    if (kind === 1) {
      if (isLast) out.push('');
      continue;
    }
    if (kind === 2) {
      out.pop();
      if (isLast) out.push('');
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}

function mergeSlashes(path: string): string {
  return path.indexOf('//') === -1 ? path : path.replace(/\/{2,}/g, '/');
}

/**
 * Normalizes a path (no query, no fragment; starts with `/`; percent escapes already validated).
 * NONE returns it unchanged. Every other mode: `\`→`/`, unreserved %HH decoded once, dot segments removed;
 * MERGE_SLASHES also merges `//`; DECODE_AND_MERGE_SLASHES first decodes %2F/%5C (any case).
 */
export function normalizePath(path: string, mode: PathNormalization): string {
  if (mode === 'NONE') return path;
  let p = path;
  if (mode === 'DECODE_AND_MERGE_SLASHES') p = decodeSome(p, isEncodedSlash);
  if (p.indexOf('\\') !== -1) p = p.replace(/\\/g, '/');
  p = decodeSome(p, isUnreservedCode);
  // A dot segment always starts right after a `/`.
  if (p.indexOf('/.') !== -1) p = removeDotSegments(p);
  if (mode === 'MERGE_SLASHES' || mode === 'DECODE_AND_MERGE_SLASHES') p = mergeSlashes(p);
  return p;
}
