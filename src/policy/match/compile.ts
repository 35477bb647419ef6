// Owns compileMatcher: IR Matcher -> closure over RequestContext, built once at compile time. Every
// positive leaf is false when its attribute is absent; `not` flips it (istio.md §3 absent-attribute rule).
import type { RequestContext } from '../context-types.js';
import type { Matcher, StringMatcher } from '../ir.js';
import { ALWAYS_SPACE_DELIMITED, compileClaim } from './claims.js';
import { compileCidrs } from './cidr.js';
import { compilePeerName } from './identity.js';
import { compilePath } from './path.js';
import { queryParams } from './query.js';
import { compileString } from './string.js';
import type { CompiledMatcher, MatcherEnv } from './types.js';

// Regexes over attributes with few distinct values (peer principals, methods) are answered once per value:
// an RE2 call costs about a microsecond, and dialects repeat the same pattern on many rules (Cilium's
// namespace scoping). One memo per pattern and snapshot (env), bounded so hostile values cannot grow it.
const MEMO_LIMIT = 4096;
const regexMemos = new WeakMap<MatcherEnv, Map<string, (value: string) => boolean>>();
function memoRegex(pattern: string, env: MatcherEnv): (value: string) => boolean {
  let byPattern = regexMemos.get(env);
  if (byPattern === undefined) regexMemos.set(env, (byPattern = new Map()));
  let pred = byPattern.get(pattern);
  if (pred === undefined) {
    const test = compileString({ kind: 'regex', pattern });
    const seen = new Map<string, boolean>();
    pred = (value) => {
      let r = seen.get(value);
      if (r === undefined) {
        if (seen.size >= MEMO_LIMIT) seen.clear();
        r = test(value);
        seen.set(value, r);
      }
      return r;
    };
    byPattern.set(pattern, pred);
  }
  return pred;
}
const fewValued = (match: StringMatcher, env: MatcherEnv): ((value: string) => boolean) => (match.kind === 'regex' ? memoRegex(match.pattern, env) : compileString(match));

/** Membership in a list of names: one comparison for the common single name, else a set lookup. */
function oneOf(values: readonly string[]): (value: string) => boolean {
  if (values.length === 1) {
    const only = values[0] as string;
    return (v) => v === only;
  }
  const set = new Set(values);
  return (v) => set.has(v);
}

const TRUE: CompiledMatcher = () => true;
const FALSE: CompiledMatcher = () => false;

/** A header value as Envoy's header matcher sees it; pseudo-headers are derived from the context. */
export function headerValue(ctx: RequestContext, name: string): string | undefined {
  if (name.charCodeAt(0) === 0x3a) {
    switch (name) {
      case ':method': return ctx.method || undefined;
      case ':path': return ctx.path ? (ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path) : undefined;
      case ':authority': return ctx.authority || undefined;
      default: return undefined;
    }
  }
  return ctx.headers[name];
}

/** RFC 9110 §5.3 list elements of a (joined) field value: split on `,`, optional whitespace trimmed. */
export function headerElements(value: string): string[] {
  return value.split(',').map((e) => e.replace(/^[ \t]+|[ \t]+$/g, ''));
}

function compileAll(list: readonly Matcher[], env: MatcherEnv): CompiledMatcher[] {
  return list.map((m) => compileMatcher(m, env));
}

// Large rule sets are bound by memory latency, not by work: every closure a rule's test calls is a cache
// miss when the rule is cold. So nested and/or nodes are flattened, and the common leaves (exact
// principal, method, path) compare in place instead of calling a string predicate.

/** The children of nested nodes of one type, as one list (`and(a, and(b, c))` -> `[a, b, c]`). */
export function flatten(type: 'and' | 'or', list: readonly Matcher[]): Matcher[] {
  const out: Matcher[] = [];
  for (const m of list) {
    if (m.type === type) out.push(...flatten(type, m.of));
    else out.push(m);
  }
  return out;
}

type ExactLeaf = Extract<Matcher, { type: 'peer.principal' | 'request.method' | 'request.path' }>;

/** The value of an exact, case-sensitive principal, method or path leaf. */
function exactValue(m: Matcher): string | undefined {
  if (m.type !== 'peer.principal' && m.type !== 'request.method' && m.type !== 'request.path') return undefined;
  const match = (m as ExactLeaf).match;
  return match.kind === 'exact' && match.ignoreCase !== true ? match.value : undefined;
}

/** An `or` of exact leaves on one attribute (`methods: [GET, HEAD]`) as one membership test. */
function exactAnyOf(parts: readonly Matcher[]): CompiledMatcher | undefined {
  const type = parts[0]?.type;
  const values: string[] = [];
  for (const p of parts) {
    const v = p.type === type ? exactValue(p) : undefined;
    if (v === undefined) return undefined;
    // An empty method or path is an absent one: it never matches.
    if (v !== '' || type === 'peer.principal') values.push(v);
  }
  if (type === 'peer.principal') {
    const set = new Set(values);
    return (ctx) => ctx.peer !== null && set.has(ctx.peer.principal);
  }
  if (type === 'request.method') return (ctx) => values.includes(ctx.method);
  return (ctx) => values.includes(ctx.path);
}

export function compileMatcher(m: Matcher, env: MatcherEnv): CompiledMatcher {
  switch (m.type) {
    case 'any': return TRUE;
    case 'none': return FALSE;
    case 'and': {
      const parts = compileAll(flatten('and', m.of), env);
      if (parts.length === 0) return TRUE;
      if (parts.length === 1) return parts[0] as CompiledMatcher;
      if (parts.length === 2) {
        const [a, b] = parts as [CompiledMatcher, CompiledMatcher];
        return (ctx) => a(ctx) && b(ctx);
      }
      if (parts.length === 3) {
        const [a, b, c] = parts as [CompiledMatcher, CompiledMatcher, CompiledMatcher];
        return (ctx) => a(ctx) && b(ctx) && c(ctx);
      }
      return (ctx) => {
        for (let i = 0; i < parts.length; i++) if (!(parts[i] as CompiledMatcher)(ctx)) return false;
        return true;
      };
    }
    case 'or': {
      const children = flatten('or', m.of);
      if (children.length > 1) {
        const fused = exactAnyOf(children);
        if (fused) return fused;
      }
      const parts = compileAll(children, env);
      if (parts.length === 0) return FALSE;
      if (parts.length === 1) return parts[0] as CompiledMatcher;
      if (parts.length === 2) {
        const [a, b] = parts as [CompiledMatcher, CompiledMatcher];
        return (ctx) => a(ctx) || b(ctx);
      }
      if (parts.length === 3) {
        const [a, b, c] = parts as [CompiledMatcher, CompiledMatcher, CompiledMatcher];
        return (ctx) => a(ctx) || b(ctx) || c(ctx);
      }
      return (ctx) => {
        for (let i = 0; i < parts.length; i++) if ((parts[i] as CompiledMatcher)(ctx)) return true;
        return false;
      };
    }
    case 'not': {
      const inner = compileMatcher(m.of, env);
      return (ctx) => !inner(ctx);
    }
    case 'peer.principal': {
      const want = exactValue(m);
      if (want !== undefined) return (ctx) => ctx.peer !== null && ctx.peer.principal === want;
      const pred = fewValued(m.match, env);
      return (ctx) => ctx.peer !== null && pred(ctx.peer.principal);
    }
    case 'peer.authenticated':
      return (ctx) => ctx.peer !== null;
    case 'peer.name': {
      const pred = compilePeerName(m.template, m.exact, m.suffixes);
      return (ctx) => pred(ctx.peer);
    }
    case 'peer.registered': {
      const ids = new Set(m.spiffeIds);
      if (!m.unknown) return (ctx) => ctx.peer !== null && ids.has(ctx.peer.spiffeId);
      const known = env.peers?.byId;
      return (ctx) => ctx.peer !== null && (ids.has(ctx.peer.spiffeId) || known === undefined || !known.has(ctx.peer.spiffeId));
    }
    case 'source.ip': {
      const pred = compileCidrs(m.cidrs);
      return (ctx) => pred(ctx.sourceIp);
    }
    case 'remote.ip': {
      const pred = compileCidrs(m.cidrs);
      return (ctx) => pred(ctx.remoteIp);
    }
    case 'destination.ip': {
      const pred = compileCidrs(m.cidrs);
      return (ctx) => pred(ctx.destinationIp);
    }
    case 'destination.port': {
      const ports = new Set(m.ports);
      if (ports.size === 1) {
        const only = m.ports[0] as number;
        return (ctx) => ctx.port === only;
      }
      return (ctx) => ports.has(ctx.port);
    }
    case 'peer.namespace': {
      const inTrustDomain = oneOf(m.trustDomains);
      const inNamespace = m.namespaces === undefined ? null : oneOf(m.namespaces);
      const inAccount = m.serviceAccounts === undefined ? null : oneOf(m.serviceAccounts);
      return (ctx) => {
        const p = ctx.peer;
        return p !== null && p.namespace !== undefined && p.serviceAccount !== undefined && inTrustDomain(p.trustDomain)
          && (inNamespace === null || inNamespace(p.namespace)) && (inAccount === null || inAccount(p.serviceAccount));
      };
    }
    case 'destination.portRange': {
      const { from, to } = m;
      return (ctx) => ctx.port >= from && ctx.port <= to;
    }
    case 'connection.sni': {
      const pred = compileString(m.match);
      return (ctx) => ctx.sni !== undefined && ctx.sni.length > 0 && pred(ctx.sni);
    }
    case 'request.method': {
      const want = exactValue(m);
      if (want !== undefined) return want === '' ? FALSE : (ctx) => ctx.method === want;
      const pred = fewValued(m.match, env);
      return (ctx) => ctx.method.length > 0 && pred(ctx.method);
    }
    case 'request.host': {
      const pred = compileString(m.match, true);
      if (m.anyPort === true) return (ctx) => ctx.authority.length > 0 && (pred(ctx.authority) || pred(ctx.host));
      return (ctx) => ctx.authority.length > 0 && pred(ctx.authority);
    }
    case 'request.path': {
      const want = exactValue(m);
      if (want !== undefined) return want === '' ? FALSE : (ctx) => ctx.path === want;
      const pred = compilePath(m.match);
      return (ctx) => ctx.path.length > 0 && pred(ctx.path);
    }
    case 'request.header': {
      const name = m.name.toLowerCase();
      const pred = compileString(m.match);
      const elements = m.elements;
      // Pseudo-headers are single values derived by the proxy: a `,` in `:path` is not a list separator.
      if (elements === undefined || name.charCodeAt(0) === 0x3a) {
        return (ctx) => {
          const v = headerValue(ctx, name);
          return v !== undefined && pred(v);
        };
      }
      if (elements === 'any') {
        return (ctx) => {
          const v = headerValue(ctx, name);
          if (v === undefined) return false;
          if (pred(v)) return true;
          return v.includes(',') && headerElements(v).some(pred);
        };
      }
      return (ctx) => {
        const v = headerValue(ctx, name);
        if (v === undefined) return false;
        return v.includes(',') ? headerElements(v).every(pred) : pred(v);
      };
    }
    case 'request.query': {
      const name = m.name;
      const pred = compileString(m.match);
      return (ctx) => {
        if (ctx.protocol === 'tcp') return false;
        const values = queryParams(ctx).get(name);
        if (values === undefined) return false;
        for (const v of values) if (pred(v)) return true;
        return false;
      };
    }
    case 'jwt.principal': {
      const iss = compileString(m.issuer);
      const sub = compileString(m.subject);
      return (ctx) => ctx.jwt !== null && iss(ctx.jwt.issuer) && sub(ctx.jwt.subject);
    }
    case 'jwt.claim': {
      const split = new Set<string>([...ALWAYS_SPACE_DELIMITED, ...(env.spaceDelimitedClaims ?? [])]);
      const pred = compileClaim(m.path, compileString(m.match), split);
      return (ctx) => pred(ctx.jwt);
    }
    case 'unsupported':
      return FALSE;
  }
  // An IR node this engine does not know must not silently match or silently fail: refuse the snapshot.
  throw new Error(`unknown matcher type ${JSON.stringify((m as { type?: unknown }).type)}`);
}
