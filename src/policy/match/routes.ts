// Owns route selection for a scope's route table: compiled Gateway API HTTPRoute/GRPCRoute matches and the
// precedence score, as linkerd2-proxy linkerd/http/route/src/{lib.rs,http/match*.rs,grpc/match.rs} does (linkerd.md §6).

import RE2 from 're2';
import type { RequestContext } from '../context-types.js';
import type { PathMatcher, Route, RouteMatch, RouteRule, StringMatcher } from '../ir.js';

/** Lexicographic score; higher wins, ties keep the earlier route/rule. */
export type Score = readonly number[];

export interface RouteHit {
  route: Route;
  rule: RouteRule;
  match: RouteMatch | undefined;
  score: Score;
}

type ValueTest = (value: string) => boolean;

/** Whole-value regex as Rust `Regex::find` accepts it: the leftmost-first match must span the input. */
export function wholeMatch(pattern: string): ValueTest {
  const re = new RE2(pattern, 'u');
  return (value) => {
    re.lastIndex = 0;
    const m = re.exec(value);
    return m !== null && m.index === 0 && m[0].length === value.length;
  };
}

function stringTest(m: StringMatcher): ValueTest {
  switch (m.kind) {
    case 'exact': return (v) => v === m.value;
    case 'prefix': return (v) => v.startsWith(m.value);
    case 'suffix': return (v) => v.endsWith(m.value);
    case 'present': return (v) => v !== '';
    case 'regex': return wholeMatch(m.pattern);
  }
}

/** Segment-wise PathPrefix: `/api` matches `/api`, `/api/`, `/api/x`, never `/apix`; `/` matches all. */
export function segmentPrefixMatches(prefix: string, path: string): boolean {
  return segmentPrefixTest(trimTrailingSlashes(prefix))(path);
}

function trimTrailingSlashes(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x2f) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** `trimmed` is the prefix without trailing slashes (`""` for `/`, which matches every path). */
function segmentPrefixTest(trimmed: string): (path: string) => boolean {
  if (trimmed === '') return () => true;
  return (path) => {
    if (!path.startsWith(trimmed)) return false;
    // The rest must be empty or start with `/`; trailing slashes of the path do not count.
    return path.length === trimmed.length || path.charCodeAt(trimmed.length) === 0x2f;
  };
}

/** Returns the matched length used for precedence, or -1. */
type PathTest = (path: string) => number;

function pathTest(m: PathMatcher): PathTest {
  switch (m.kind) {
    case 'exact': return (p) => (p === m.value ? m.value.length : -1);
    case 'segment-prefix': { const t = segmentPrefixTest(trimTrailingSlashes(m.value)); const len = m.value.length; return (p) => (t(p) ? len : -1); }
    case 'regex': { const t = wholeMatch(m.pattern); return (p) => (t(p) ? p.length : -1); }
    default: return () => -1;
  }
}

/** Query string parsed as application/x-www-form-urlencoded; malformed escapes stay as sent. */
export function parseQuery(query: string): [string, string][] {
  const out: [string, string][] = [];
  if (query === '') return out;
  const decode = (s: string) => {
    const plus = s.replace(/\+/g, ' ');
    try { return decodeURIComponent(plus); } catch { return plus; }
  };
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    out.push(eq < 0 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
  }
  return out;
}

/**
 * Repeated headers reach the core joined with `,`; Linkerd tests each header line on its own. We accept
 * the joined value or any comma-separated piece of it (documented in docs/linkerd.md).
 */
function headerValues(joined: string): string[] {
  return joined.includes(',') ? [joined, ...joined.split(',').map((s) => s.trim())] : [joined];
}

type MatchScorer = (ctx: RequestContext, query: () => [string, string][]) => Score | undefined;

function compileHttpMatch(m: RouteMatch): MatchScorer {
  const path = pathTest(m.path ?? { kind: 'segment-prefix', value: '/' });
  const headers = m.headers.map((h) => ({ name: h.name.toLowerCase(), test: stringTest(h.match) }));
  const params = m.queryParams.map((q) => ({ name: q.name, test: stringTest(q.match) }));
  const method = m.method;
  return (ctx, query) => {
    if (method !== undefined && ctx.method !== method) return undefined;
    const len = path(ctx.path);
    if (len < 0) return undefined;
    for (const h of headers) {
      const v = ctx.headers[h.name];
      if (v === undefined || !headerValues(v).some(h.test)) return undefined;
    }
    if (params.length > 0) {
      const q = query();
      for (const p of params) if (!q.some(([k, v]) => k === p.name && p.test(v))) return undefined;
    }
    return [len, headers.length, params.length, method !== undefined ? 1 : 0];
  };
}

const GRPC_PATH = /^\/([^/]+)\/([^/]+)$/;

function compileGrpcMatch(m: RouteMatch): MatchScorer {
  const service = m.grpc?.service;
  const rpc = m.grpc?.method;
  const headers = m.headers.map((h) => ({ name: h.name.toLowerCase(), test: stringTest(h.match) }));
  return (ctx) => {
    if (ctx.method !== 'POST') return undefined;
    const parts = GRPC_PATH.exec(ctx.path);
    if (!parts) return undefined;
    if (service !== undefined && parts[1] !== service) return undefined;
    if (rpc !== undefined && parts[2] !== rpc) return undefined;
    for (const h of headers) {
      const v = ctx.headers[h.name];
      if (v === undefined || !headerValues(v).some(h.test)) return undefined;
    }
    return [service?.length ?? 0, rpc?.length ?? 0, headers.length];
  };
}

/** Host score: hostname-less routes 0; `*.suffix` 1 + labels; exact 1000 + length (exact beats wildcard). */
function compileHosts(hostnames: string[]): ((host: string) => number) | undefined {
  if (hostnames.length === 0) return undefined;
  const tests = hostnames.map((h) => {
    const name = h.toLowerCase().replace(/\.$/, '');
    if (name.startsWith('*.')) {
      const suffix = name.slice(1);
      const labels = suffix.split('.').length - 1;
      return (host: string) => (host.endsWith(suffix) && host.length > suffix.length ? 1 + labels : -1);
    }
    return (host: string) => (host === name ? 1000 + name.length : -1);
  });
  return (host) => Math.max(...tests.map((t) => t(host)));
}

export interface CompiledRoute {
  route: Route;
  find(ctx: RequestContext, query: () => [string, string][]): RouteHit | undefined;
}

function better(a: Score, b: Score): boolean {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return false;
}

export function compileRoute(route: Route): CompiledRoute {
  const hosts = compileHosts(route.hostnames);
  const rules = route.rules.map((rule) => {
    // A rule without matches matches everything: PathPrefix `/`, or any `/service/method` for gRPC.
    const isGrpc = route.ref.kind === 'GRPCRoute' || rule.matches.some((m) => m.grpc !== undefined);
    const matches: (RouteMatch | undefined)[] = rule.matches.length > 0 ? rule.matches : [undefined];
    const empty: RouteMatch = isGrpc ? { grpc: {}, headers: [], queryParams: [] } : { headers: [], queryParams: [] };
    return {
      rule,
      matches: matches.map((m) => ({ match: m, score: isGrpc ? compileGrpcMatch(m ?? empty) : compileHttpMatch(m ?? empty) })),
    };
  });
  return {
    route,
    find(ctx, query) {
      let hostScore = 0;
      if (hosts) {
        hostScore = hosts(ctx.host);
        if (hostScore < 0) return undefined;
      }
      let best: RouteHit | undefined;
      for (const r of rules) {
        for (const m of r.matches) {
          const s = m.score(ctx, query);
          if (!s) continue;
          const score = [hostScore, ...s];
          if (!best || better(score, best.score)) best = { route, rule: r.rule, match: m.match, score };
        }
      }
      return best;
    },
  };
}

/** The best route over all routes (ordered by `order`), or undefined: the proxy's 404. */
export function selectRoute(routes: readonly CompiledRoute[], ctx: RequestContext): RouteHit | undefined {
  let parsed: [string, string][] | undefined;
  const query = () => (parsed ??= parseQuery(ctx.query));
  let best: RouteHit | undefined;
  for (const r of routes) {
    const hit = r.find(ctx, query);
    if (hit && (!best || better(hit.score, best.score))) best = hit;
  }
  return best;
}
