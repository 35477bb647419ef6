// Owns the rule index behind evaluate's hot path: each rule is filed under a necessary condition taken
// from its matcher (exact path, path prefix, peer principal or registered SPIFFE IDs, authority, port) so a
// request only tests candidate rules, in the same rule-id order a linear scan would use (so the reported rule
// is identical).
import type { RequestContext } from '../context-types.js';
import type { Matcher, TierRule } from '../ir.js';
import { compileMatcher } from './compile.js';
import { templateLiteralPrefix } from './path.js';
import type { CompiledMatcher, MatcherEnv } from './types.js';

/**
 * A rule as the hot path reads it. What a decision needs from the rule (action, reason, names) is copied
 * here at compile time: reaching into the IR rule cost a cache miss per candidate on large rule sets.
 */
export interface CompiledRule extends Pick<TierRule, 'id' | 'policy' | 'action' | 'reason' | 'namedAs'> {
  rule: TierRule;
  test: CompiledMatcher;
  /** How the evaluator treats a match (program.ts: ends the list, marks, falls back, or shadows). */
  kind: number;
  /** Position in the set's evaluation order. Index lists hold rules ascending by it. */
  order: number;
}

/** A rule to index, in evaluation order, with the evaluator's kind for it. */
export interface RuleEntry {
  rule: TierRule;
  kind: number;
}

// `folded` keys hold a lower-cased path and are looked up with the lower-cased request path: DENY paths
// that ignore case (the secure default) stay indexed instead of falling into the residual list.
// `host` keys are looked up with the host without its port (DENY hosts that match any port).
type KeyEntry =
  | { dim: 'pathExact'; value: string }
  | { dim: 'pathPrefix'; value: string }
  | { dim: 'pathExactFolded'; value: string }
  | { dim: 'pathPrefixFolded'; value: string }
  | { dim: 'principal'; value: string }
  /** A `peer.registered` leaf that identities missing from the registry match (a deny's pessimistic reading). */
  | { dim: 'unregistered'; value: '' }
  | { dim: 'authority'; value: string }
  | { dim: 'host'; value: string }
  | { dim: 'port'; value: number };

/** Radix tree node: `label` is the edge text leading here; children are keyed by their label's first char. */
interface TrieNode {
  label: string;
  children: Map<number, TrieNode> | null;
  rules: CompiledRule[] | null;
}

export interface RuleSet {
  /** Sorted by rule id (Envoy keeps RBAC policies in a name-ordered map). */
  rules: CompiledRule[];
  pathExact: Map<string, CompiledRule[]>;
  pathPrefix: TrieNode | null;
  pathExactFolded: Map<string, CompiledRule[]>;
  pathPrefixFolded: TrieNode | null;
  principal: Map<string, CompiledRule[]>;
  /** Candidates for a verified peer whose SPIFFE ID is not in `registered` (the peer registry). */
  unregistered: CompiledRule[];
  registered: ReadonlyMap<string, unknown>;
  authority: Map<string, CompiledRule[]>;
  host: Map<string, CompiledRule[]>;
  port: Map<number, CompiledRule[]>;
  /** Rules with no indexable necessary condition: always candidates. */
  residual: CompiledRule[];
  /** Counts for docs and the benchmark: how many rules went where. */
  stats: { indexed: number; residual: number; never: number };
}

type Dim = 'path' | 'principal' | 'authority' | 'port';

function dimOf(e: KeyEntry): Dim {
  switch (e.dim) {
    case 'pathExact': case 'pathPrefix': case 'pathExactFolded': case 'pathPrefixFolded': return 'path';
    case 'host': return 'authority';
    case 'unregistered': return 'principal';
    default: return e.dim;
  }
}

/**
 * For each attribute ("dimension"), a set of key entries such that "matcher is true" implies "the
 * request hits at least one entry". `never` marks a matcher that cannot be true at all. A dimension is
 * missing when no such set exists for it; a rule with no dimension stays in the residual list.
 */
export interface KeyOptions {
  never: boolean;
  byDim: Map<Dim, KeyEntry[]>;
}

function single(e: KeyEntry): KeyOptions {
  return { never: false, byDim: new Map([[dimOf(e), [e]]]) };
}

const NONE_OPTIONS: KeyOptions = { never: false, byDim: new Map() };
const SPIFFE_SCHEME = 'spiffe://';

export function keyOptions(m: Matcher): KeyOptions {
  switch (m.type) {
    case 'none': return { never: true, byDim: new Map() };
    case 'request.path': {
      const pm = m.match;
      if (pm.kind === 'exact' && !pm.ignoreCase) return single({ dim: 'pathExact', value: pm.value });
      if (pm.kind === 'prefix' && !pm.ignoreCase) return single({ dim: 'pathPrefix', value: pm.value });
      if (pm.kind === 'template' && !pm.ignoreCase) return single({ dim: 'pathPrefix', value: templateLiteralPrefix(pm.segments) });
      // Case-insensitive forms compare lower-cased request paths with lower-cased values (match/path.ts).
      if (pm.kind === 'exact') return single({ dim: 'pathExactFolded', value: pm.value.toLowerCase() });
      if (pm.kind === 'prefix') return single({ dim: 'pathPrefixFolded', value: pm.value.toLowerCase() });
      if (pm.kind === 'template') {
        const lowered = pm.segments.map((s) => (s.kind === 'literal' ? { ...s, value: s.value.toLowerCase() } : s));
        return single({ dim: 'pathPrefixFolded', value: templateLiteralPrefix(lowered) });
      }
      if (pm.kind === 'segment-prefix') return single({ dim: 'pathPrefix', value: pm.value.replace(/\/+$/, '') });
      return NONE_OPTIONS;
    }
    case 'peer.principal':
      return m.match.kind === 'exact' && !m.match.ignoreCase ? single({ dim: 'principal', value: m.match.value }) : NONE_OPTIONS;
    case 'peer.registered': {
      // The listed IDs are filed by principal (the SPIFFE ID without its scheme, as the request's peer carries
      // it; an ID without the scheme never matches), and when unknown identities match, under `unregistered`
      // too, which only a peer missing from the registry looks up.
      const keys = m.spiffeIds.filter((id) => id.startsWith(SPIFFE_SCHEME)).map((id): KeyEntry => ({ dim: 'principal', value: id.slice(SPIFFE_SCHEME.length) }));
      if (m.unknown) keys.push({ dim: 'unregistered', value: '' });
      return { never: keys.length === 0, byDim: new Map([['principal', keys]]) };
    }
    case 'request.host': {
      if (m.match.kind !== 'exact') return NONE_OPTIONS;
      const value = m.match.value.toLowerCase();
      if (m.anyPort !== true) return single({ dim: 'authority', value });
      // Any port: the matcher accepts authority === value or host === value; a value without ':' that equals
      // the authority has no port, so it equals the host too. A value with ':' stays unindexed.
      return value.includes(':') ? NONE_OPTIONS : single({ dim: 'host', value });
    }
    case 'destination.port':
      return { never: m.ports.length === 0, byDim: new Map([['port', m.ports.map((p): KeyEntry => ({ dim: 'port', value: p }))]]) };
    case 'or': {
      // A request can satisfy an OR through any live child, so a dimension is usable only if every live
      // child offers it; dead children (never true) add nothing.
      const live = m.of.map(keyOptions).filter((o) => !o.never);
      if (live.length === 0) return { never: true, byDim: new Map() };
      const byDim = new Map<Dim, KeyEntry[]>();
      for (const dim of (live[0] as KeyOptions).byDim.keys()) {
        if (live.every((o) => o.byDim.has(dim))) byDim.set(dim, live.flatMap((o) => o.byDim.get(dim) as KeyEntry[]));
      }
      return { never: false, byDim };
    }
    case 'and': {
      // Any child's condition is necessary for the AND; keep, per dimension, the smallest key set.
      const byDim = new Map<Dim, KeyEntry[]>();
      for (const child of m.of.map(keyOptions)) {
        if (child.never) return { never: true, byDim: new Map() };
        for (const [dim, entries] of child.byDim) {
          const prior = byDim.get(dim);
          if (prior === undefined || entries.length < prior.length) byDim.set(dim, entries);
        }
      }
      return { never: false, byDim };
    }
    default:
      return NONE_OPTIONS;
  }
}

const keyText = (e: KeyEntry): string => `${e.dim}\u0000${String(e.value)}`;

/** Picks, per rule, the dimension whose keys are shared by the fewest other rules (global selectivity). */
function chooseKeys(options: KeyOptions[]): (KeyEntry[] | null)[] {
  const freq = new Map<string, number>();
  for (const o of options) {
    for (const entries of o.byDim.values()) {
      for (const k of new Set(entries.map(keyText))) freq.set(k, (freq.get(k) ?? 0) + 1);
    }
  }
  return options.map((o) => {
    if (o.never) return [];
    let best: KeyEntry[] | null = null;
    let bestCost = Infinity;
    for (const entries of o.byDim.values()) {
      let cost = 0;
      for (const e of entries) {
        cost += freq.get(keyText(e)) ?? 1;
        // A short prefix is hit by nearly every request whatever its frequency among rules.
        if ((e.dim === 'pathPrefix' || e.dim === 'pathPrefixFolded') && e.value.length <= 1) cost += options.length;
      }
      if (cost < bestCost) {
        bestCost = cost;
        best = entries;
      }
    }
    return best;
  });
}

// Lists hold the rules themselves (not positions) to spare the hot path one memory hop per candidate.
function pushTo<K>(map: Map<K, CompiledRule[]>, key: K, rule: CompiledRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [rule]);
  else if (list[list.length - 1] !== rule) list.push(rule);
}

function addRule(node: TrieNode, rule: CompiledRule): void {
  if (node.rules === null) node.rules = [rule];
  else if (node.rules[node.rules.length - 1] !== rule) node.rules.push(rule);
}

// A path-compressed trie keeps the walk to a few hops even with 10,000 prefixes (a per-character trie
// made one Map and several cache misses per character).
function insertPrefix(root: TrieNode, prefix: string, rule: CompiledRule): void {
  let node = root;
  let pos = 0;
  while (true) {
    if (pos === prefix.length) {
      addRule(node, rule);
      return;
    }
    const c = prefix.charCodeAt(pos);
    node.children ??= new Map();
    const child = node.children.get(c);
    if (child === undefined) {
      node.children.set(c, { label: prefix.slice(pos), children: null, rules: [rule] });
      return;
    }
    let common = 0;
    const max = Math.min(child.label.length, prefix.length - pos);
    while (common < max && child.label.charCodeAt(common) === prefix.charCodeAt(pos + common)) common++;
    if (common < child.label.length) {
      const mid: TrieNode = { label: child.label.slice(0, common), children: new Map([[child.label.charCodeAt(common), child]]), rules: null };
      child.label = child.label.slice(common);
      node.children.set(c, mid);
      node = mid;
    } else {
      node = child;
    }
    pos += common;
  }
}

/**
 * One index over a list of rules in evaluation order: a request looks its keys up once and tests only the
 * candidates, in the same order a linear scan would (so the rule reported is identical).
 */
export function buildRuleSet(entries: readonly RuleEntry[], env: MatcherEnv, cache?: Map<Matcher, CompiledMatcher>): RuleSet {
  const compile = (m: Matcher): CompiledMatcher => {
    let test = cache?.get(m);
    if (test === undefined) {
      test = compileMatcher(m, env);
      cache?.set(m, test);
    }
    return test;
  };
  const compiled: CompiledRule[] = entries.map(({ rule, kind }, order) => ({
    rule, test: compile(rule.match), kind, order,
    id: rule.id, policy: rule.policy, action: rule.action, reason: rule.reason, namedAs: rule.namedAs,
  }));
  const set: RuleSet = {
    rules: compiled,
    pathExact: new Map(), pathPrefix: null, pathExactFolded: new Map(), pathPrefixFolded: null,
    principal: new Map(), unregistered: [], registered: env.peers?.byId ?? new Map(), authority: new Map(), host: new Map(), port: new Map(),
    residual: [], stats: { indexed: 0, residual: 0, never: 0 },
  };
  const chosen = chooseKeys(entries.map((e) => keyOptions(e.rule.match)));
  compiled.forEach((cr, idx) => {
    const keys = chosen[idx] as KeyEntry[] | null;
    if (keys === null) {
      set.residual.push(cr);
      set.stats.residual++;
      return;
    }
    if (keys.length === 0) {
      set.stats.never++;
      return;
    }
    set.stats.indexed++;
    for (const k of keys) {
      switch (k.dim) {
        case 'pathExact': pushTo(set.pathExact, k.value, cr); break;
        case 'pathExactFolded': pushTo(set.pathExactFolded, k.value, cr); break;
        case 'principal': pushTo(set.principal, k.value, cr); break;
        case 'unregistered': if (set.unregistered[set.unregistered.length - 1] !== cr) set.unregistered.push(cr); break;
        case 'authority': pushTo(set.authority, k.value, cr); break;
        case 'host': pushTo(set.host, k.value, cr); break;
        case 'port': pushTo(set.port, k.value, cr); break;
        case 'pathPrefix':
          set.pathPrefix ??= { label: '', children: null, rules: null };
          insertPrefix(set.pathPrefix, k.value, cr);
          break;
        case 'pathPrefixFolded':
          set.pathPrefixFolded ??= { label: '', children: null, rules: null };
          insertPrefix(set.pathPrefixFolded, k.value, cr);
          break;
      }
    }
  });
  return set;
}

// Scratch space for candidate lists; evaluation is synchronous and never re-entered from a matcher.
/** Candidate lists of the last `collect` call (each ascending by order); shared scratch. */
export const lists: CompiledRule[][] = [];
const heads: number[] = [];

/** Fills `lists[0..n)` with the candidate lists the request hits and returns n. */
export function collect(set: RuleSet, ctx: RequestContext): number {
  let n = 0;
  if (set.residual.length > 0) lists[n++] = set.residual;
  if (set.pathExact.size > 0) {
    const l = set.pathExact.get(ctx.path);
    if (l !== undefined) lists[n++] = l;
  }
  if (set.pathPrefix !== null) n = walkPrefixes(set.pathPrefix, ctx.path, n);
  if (set.pathExactFolded.size > 0 || set.pathPrefixFolded !== null) {
    const folded = ctx.path.toLowerCase();
    const l = set.pathExactFolded.get(folded);
    if (l !== undefined) lists[n++] = l;
    if (set.pathPrefixFolded !== null) n = walkPrefixes(set.pathPrefixFolded, folded, n);
  }
  if (set.principal.size > 0 && ctx.peer !== null) {
    const l = set.principal.get(ctx.peer.principal);
    if (l !== undefined) lists[n++] = l;
  }
  if (set.unregistered.length > 0 && ctx.peer !== null && !set.registered.has(ctx.peer.spiffeId)) lists[n++] = set.unregistered;
  if (set.authority.size > 0) {
    const l = set.authority.get(ctx.authority);
    if (l !== undefined) lists[n++] = l;
  }
  if (set.host.size > 0) {
    const l = set.host.get(ctx.host);
    if (l !== undefined) lists[n++] = l;
  }
  if (set.port.size > 0) {
    const l = set.port.get(ctx.port);
    if (l !== undefined) lists[n++] = l;
  }
  return n;
}

/** Appends to `lists` from `n` the rules of every trie node whose prefix starts `path`; returns the new n. */
function walkPrefixes(root: TrieNode, path: string, n: number): number {
  let node = root;
  if (node.rules !== null) lists[n++] = node.rules;
  let pos = 0;
  while (pos < path.length && node.children !== null) {
    const child = node.children.get(path.charCodeAt(pos));
    if (child === undefined || !path.startsWith(child.label, pos)) break;
    pos += child.label.length;
    node = child;
    if (node.rules !== null) lists[n++] = node.rules;
  }
  return n;
}

/**
 * Visits the candidates of the last `collect` (`lists[0..n)`) in rule order, each rule once, until `accept`
 * returns true. The union is merged lazily, so a scan that stops early never orders the rest.
 */
export function scanCandidates(n: number, ctx: RequestContext, accept: (r: CompiledRule, ctx: RequestContext) => boolean): void {
  if (n === 1) {
    // One list (the common case) is walked in place.
    const only = lists[0] as CompiledRule[];
    for (let i = 0; i < only.length; i++) if (accept(only[i] as CompiledRule, ctx)) return;
    return;
  }
  for (let i = 0; i < n; i++) heads[i] = 0;
  let last = -1;
  while (true) {
    let best = -1;
    let bestOrder = Number.MAX_SAFE_INTEGER;
    let r: CompiledRule | undefined;
    for (let i = 0; i < n; i++) {
      const l = lists[i] as CompiledRule[];
      const h = heads[i] as number;
      if (h < l.length) {
        const c = l[h] as CompiledRule;
        if (c.order < bestOrder) {
          bestOrder = c.order;
          best = i;
          r = c;
        }
      }
    }
    if (best === -1 || r === undefined) return;
    heads[best] = (heads[best] as number) + 1;
    // A rule filed under several hit keys is seen once.
    if (bestOrder === last) continue;
    last = bestOrder;
    if (accept(r, ctx)) return;
  }
}

let firstHit: CompiledRule | null = null;
function acceptFirst(r: CompiledRule, ctx: RequestContext): boolean {
  if (!r.test(ctx)) return false;
  firstHit = r;
  return true;
}

/** The first rule (in order) whose matcher is true, testing only indexed candidates. */
export function firstMatch(set: RuleSet, ctx: RequestContext): CompiledRule | null {
  firstHit = null;
  scanCandidates(collect(set, ctx), ctx, acceptFirst);
  return firstHit;
}

/** The same answer without the index: the reference the property tests compare against. */
export function firstMatchLinear(set: RuleSet, ctx: RequestContext): CompiledRule | null {
  for (const r of set.rules) if (r.test(ctx)) return r;
  return null;
}
