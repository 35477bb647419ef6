// Owns the rule index behind evaluate's hot path: each rule is filed under a necessary condition taken
// from its matcher (exact path, path prefix, peer principal or registered SPIFFE IDs, peer namespace, authority,
// port) so a
// request only tests candidate rules, in the same rule-id order a linear scan would use (so the reported rule
// is identical).
import type { RequestContext } from '../context-types.js';
import type { Matcher, StringMatcher, TierRule } from '../ir.js';
import { compileMatcher } from './compile.js';
import { FlatEncoder, runFlat, type FlatCode } from './flat.js';
import { templateLiteralPrefix } from './path.js';
import { regexLiteralPrefix } from './regex.js';
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
  /** The namespace of a pod identity `<td>/ns/<ns>/sa/<sa>` (`peer.namespace` leaves that name namespaces). */
  | { dim: 'namespace'; value: string }
  | { dim: 'authority'; value: string }
  | { dim: 'host'; value: string }
  | { dim: 'port'; value: number };

type Dim = 'path' | 'principal' | 'namespace' | 'authority' | 'port';

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
    case 'peer.namespace':
      return m.namespaces === undefined ? NONE_OPTIONS
        : { never: m.namespaces.length === 0, byDim: new Map([['namespace', m.namespaces.map((value): KeyEntry => ({ dim: 'namespace', value }))]]) };
    case 'request.header':
      return m.name.toLowerCase() === ':path' ? rawPathKeys(m.match) : NONE_OPTIONS;
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

/**
 * `:path` is the path with `?query` appended (Cilium matches it whole): a value that must start with a literal
 * without `?` needs the request path to start with it; an exact value without `?` needs that exact path.
 */
function rawPathKeys(match: StringMatcher): KeyOptions {
  const beforeQuery = (text: string): string => text.split('?', 1)[0] as string;
  let prefix: string;
  switch (match.kind) {
    case 'exact':
      if (match.ignoreCase !== true && !match.value.includes('?')) return single({ dim: 'pathExact', value: match.value });
      prefix = match.ignoreCase === true ? '' : beforeQuery(match.value);
      break;
    case 'prefix': prefix = match.ignoreCase === true ? '' : beforeQuery(match.value); break;
    case 'regex': prefix = beforeQuery(regexLiteralPrefix(match.pattern)); break;
    default: prefix = '';
  }
  return prefix === '' ? NONE_OPTIONS : single({ dim: 'pathPrefix', value: prefix });
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

// Path keys are found by hashing the request path once, probing one small typed-array table for each prefix
// length that has keys and for the whole path. A trie walk was a chain of cache misses (a Map and a node per
// level) and a Map lookup compared the cold key string: together about 1 µs at 10,000 rules. A path key is
// a 32-bit hash (FNV-1a over UTF-16 units, then a murmur3 finalizer mixing in the length and the key's
// kind); two keys with one hash share a candidate list: a collision only adds candidates, each still tested
// by its matcher, so the table never needs the key text.
const RAW = 1;
const FOLDED = 2;
const RAW_EXACT = 3;
const FOLDED_EXACT = 4;
const SEED = 0x811c9dc5 | 0;
const GOLDEN = 0x9e3779b1 | 0;
const step = (h: number, c: number): number => Math.imul(h ^ c, 0x01000193);
function finish(h: number, length: number, fold: number): number {
  h ^= Math.imul(length, 0x9e3779b1) ^ Math.imul(fold, 0x85ebca77);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  // 0 marks an empty slot.
  return h === 0 ? 1 : h;
}
function hashPath(text: string, fold: number): number {
  let h = SEED;
  for (let i = 0; i < text.length; i++) h = step(h, text.charCodeAt(i));
  return finish(h, text.length, fold);
}

/**
 * The index of one rule list. Candidate lists are rule orders in one typed array and exact keys map to a
 * list's start, so a lookup at 10,000 rules reads a few cache lines instead of arrays and rule objects
 * spread over the heap.
 */
export interface RuleSet {
  /** Sorted by rule id (Envoy keeps RBAC policies in a name-ordered map); `order` is the position here. */
  rules: CompiledRule[];
  /** Per rule position: its kind (CompiledRule.kind); the scan reads this, not the rule. */
  kinds: Uint8Array;
  /** Flat code of large lists (null: the scan calls each rule's closure) and where each rule's code starts. */
  flat: FlatCode | null;
  starts: Int32Array;
  /** Candidate lists: at a list's start its length, then rule orders ascending. */
  candidates: Int32Array;
  principal: Map<string, number>;
  namespace: Map<string, number>;
  authority: Map<string, number>;
  host: Map<string, number>;
  port: Map<number, number>;
  /** Path keys: open addressing, linear probing, [key hash, list start] pairs; a 0 hash is an empty slot. */
  pathSlots: Int32Array;
  pathMask: number;
  /**
   * A Bloom filter (one hash) over the path keys, about 16 bits per key: most probed prefix lengths have no
   * key, and the filter, small enough for the L1 cache, answers them without touching the table.
   */
  pathFilter: Int32Array;
  /** 32 - log2(filter bits): a key's filter bit is (hash * golden ratio) >>> pathFilterShift. */
  pathFilterShift: number;
  /** Per path length, RAW | FOLDED when a prefix key of that length exists. */
  prefixLengths: Uint8Array;
  /** Which path keys exist: bit RAW..FOLDED_EXACT (1 << kind); 0 = none, the path is not read. */
  pathKinds: number;
  /** Start of the list of rules with no indexable necessary condition (always candidates), or -1. */
  residual: number;
  /** Start of the candidates for a verified peer whose SPIFFE ID is not in `registered`, or -1. */
  unregistered: number;
  registered: ReadonlyMap<string, unknown>;
  /** Counts for docs and the benchmark: how many rules went where. */
  stats: { indexed: number; residual: number; never: number };
}

type ExactDim = 'principal' | 'namespace' | 'authority' | 'host' | 'port';

/** Collects candidate lists per key while rules are filed in order, then lays them out in one array. */
class ListBuilder {
  readonly exact = new Map<ExactDim, Map<string | number, number[]>>();
  readonly paths = new Map<number, number[]>();
  readonly residual: number[] = [];
  readonly unregistered: number[] = [];
  private candidates = new Int32Array(0);
  private at = 0;

  static add(list: number[], order: number): void {
    if (list[list.length - 1] !== order) list.push(order);
  }

  static keyed<K>(map: Map<K, number[]>, key: K, order: number): void {
    const list = map.get(key);
    if (list === undefined) map.set(key, [order]);
    else ListBuilder.add(list, order);
  }

  exactKey(dim: ExactDim, key: string | number, order: number): void {
    let map = this.exact.get(dim);
    if (map === undefined) this.exact.set(dim, (map = new Map()));
    ListBuilder.keyed(map, key, order);
  }

  private place(list: number[]): number {
    const start = this.at;
    this.candidates[this.at++] = list.length;
    for (const o of list) this.candidates[this.at++] = o;
    return start;
  }

  build(): Pick<RuleSet, 'candidates' | ExactDim | 'pathSlots' | 'pathMask' | 'pathFilter' | 'pathFilterShift' | 'residual' | 'unregistered'> {
    let total = this.residual.length + this.unregistered.length + 2;
    for (const map of [...this.exact.values(), this.paths]) for (const l of map.values()) total += l.length + 1;
    this.candidates = new Int32Array(total);
    const placed = <K>(dim: ExactDim): Map<K, number> => {
      const out = new Map<K, number>();
      for (const [key, list] of this.exact.get(dim) ?? []) out.set(key as K, this.place(list));
      return out;
    };
    // At most half full, so a probe rarely goes past one slot.
    let capacity = 2;
    while (capacity < this.paths.size * 2) capacity *= 2;
    const pathMask = capacity - 1;
    const pathSlots = new Int32Array(capacity * 2);
    for (const [hash, list] of this.paths) {
      let i = hash & pathMask;
      while (pathSlots[i * 2] !== 0) i = (i + 1) & pathMask;
      pathSlots[i * 2] = hash;
      pathSlots[i * 2 + 1] = this.place(list);
    }
    let filterBits = 1024;
    while (filterBits < this.paths.size * 16) filterBits *= 2;
    const pathFilterShift = 32 - Math.log2(filterBits);
    const pathFilter = new Int32Array(filterBits / 32);
    for (const hash of this.paths.keys()) {
      const bit = Math.imul(hash, GOLDEN) >>> pathFilterShift;
      pathFilter[bit >>> 5] = (pathFilter[bit >>> 5] as number) | (1 << (bit & 31));
    }
    return {
      principal: placed('principal'), namespace: placed('namespace'), authority: placed('authority'), host: placed('host'), port: placed('port'), pathSlots, pathMask, pathFilter, pathFilterShift,
      residual: this.residual.length > 0 ? this.place(this.residual) : -1,
      unregistered: this.unregistered.length > 0 ? this.place(this.unregistered) : -1,
      candidates: this.candidates,
    };
  }
}

/**
 * From this many rules a list's matchers also compile to flat code (match/flat.ts), which the scan runs
 * instead of the closures: a small list's closures stay in the CPU cache, where calling them is faster
 * than interpreting the code; a large list's closures are cache misses.
 */
export const FLAT_FROM = 256;

/**
 * One index over a list of rules in evaluation order: a request looks its keys up once and tests only the
 * candidates, in the same order a linear scan would (so the rule reported is identical).
 */
export function buildRuleSet(entries: readonly RuleEntry[], env: MatcherEnv, cache?: Map<Matcher, CompiledMatcher>, flatFrom = FLAT_FROM): RuleSet {
  const compile = (m: Matcher): CompiledMatcher => {
    let test = cache?.get(m);
    if (test === undefined) {
      test = compileMatcher(m, env);
      cache?.set(m, test);
    }
    return test;
  };
  const encoder = entries.length >= flatFrom ? new FlatEncoder(compile) : null;
  // With flat code only explain and the tests call a rule's closure: it is compiled on first use. A matcher
  // that cannot be built still fails here: the leaves that can throw (regex, CIDR, unknown) are flat calls.
  const lazy = (m: Matcher): CompiledMatcher => {
    let test: CompiledMatcher | undefined;
    return (ctx) => (test ??= compile(m))(ctx);
  };
  const compiled: CompiledRule[] = entries.map(({ rule, kind }, order) => ({
    rule, test: encoder === null ? compile(rule.match) : lazy(rule.match), kind, order,
    id: rule.id, policy: rule.policy, action: rule.action, reason: rule.reason, namedAs: rule.namedAs,
  }));
  const stats = { indexed: 0, residual: 0, never: 0 };
  const lists = new ListBuilder();
  const lengths: number[] = [];
  let pathKinds = 0;
  const chosen = chooseKeys(entries.map((e) => keyOptions(e.rule.match)));
  compiled.forEach((cr, order) => {
    const keys = chosen[order] as KeyEntry[] | null;
    if (keys === null) {
      ListBuilder.add(lists.residual, order);
      stats.residual++;
      return;
    }
    if (keys.length === 0) {
      stats.never++;
      return;
    }
    stats.indexed++;
    for (const k of keys) {
      switch (k.dim) {
        case 'unregistered': ListBuilder.add(lists.unregistered, order); break;
        case 'pathPrefix': case 'pathPrefixFolded': {
          const fold = k.dim === 'pathPrefix' ? RAW : FOLDED;
          ListBuilder.keyed(lists.paths, hashPath(k.value, fold), order);
          lengths[k.value.length] = (lengths[k.value.length] ?? 0) | fold;
          pathKinds |= 1 << fold;
          break;
        }
        case 'pathExact': case 'pathExactFolded': {
          const kind = k.dim === 'pathExact' ? RAW_EXACT : FOLDED_EXACT;
          ListBuilder.keyed(lists.paths, hashPath(k.value, kind), order);
          pathKinds |= 1 << kind;
          break;
        }
        default: lists.exactKey(k.dim, k.value, order);
      }
    }
  });
  const prefixLengths = new Uint8Array(lengths.length);
  lengths.forEach((bits, len) => { prefixLengths[len] = bits; });
  return {
    rules: compiled, kinds: Uint8Array.from(compiled, (r) => r.kind),
    starts: encoder === null ? new Int32Array(0) : Int32Array.from(entries, (e) => encoder.add(e.rule.match)),
    flat: encoder?.finish() ?? null, ...lists.build(), prefixLengths, pathKinds,
    registered: env.peers?.byId ?? new Map(), stats,
  };
}

// Scratch space; evaluation is synchronous and never re-entered from a matcher.
/** Starts (in the set's `candidates`) of the lists the last `collect` hit. */
const hits: number[] = [];
const heads: number[] = [];
const ends: number[] = [];

/** Appends the prefix list filed under `hash`, if any. */
function probe(set: RuleSet, hash: number, n: number): number {
  const bit = Math.imul(hash, GOLDEN) >>> set.pathFilterShift;
  if (((set.pathFilter[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return n;
  const slots = set.pathSlots;
  const mask = set.pathMask;
  let i = hash & mask;
  while (true) {
    const h = slots[i * 2] as number;
    if (h === hash) {
      hits[n] = slots[i * 2 + 1] as number;
      return n + 1;
    }
    if (h === 0) return n;
    i = (i + 1) & mask;
  }
}

const FOLDED_KINDS = (1 << FOLDED) | (1 << FOLDED_EXACT);

/**
 * One pass over the path hashes it as typed and, when folded keys exist, ASCII-lower-cased, probing every
 * prefix length that has keys and then the whole path. A path with a non-ASCII character has its folded keys
 * probed again from `toLowerCase()`, which is what case-insensitive matchers compare (a list hit twice is
 * harmless: the scan skips repeats).
 */
function collectPath(set: RuleSet, path: string, n: number): number {
  const lengths = set.prefixLengths;
  const kinds = set.pathKinds;
  const len = path.length;
  const max = lengths.length - 1;
  let raw = SEED;
  if ((kinds & FOLDED_KINDS) === 0) {
    for (let i = 0; i < len; i++) {
      if (i <= max && lengths[i] !== 0) n = probe(set, finish(raw, i, RAW), n);
      raw = step(raw, path.charCodeAt(i));
    }
    if (len <= max && lengths[len] !== 0) n = probe(set, finish(raw, len, RAW), n);
    return (kinds & (1 << RAW_EXACT)) !== 0 ? probe(set, finish(raw, len, RAW_EXACT), n) : n;
  }
  let folded = SEED;
  let ascii = true;
  for (let i = 0; ; i++) {
    if (i <= max) {
      const at = lengths[i] as number;
      if (at !== 0) {
        if ((at & RAW) !== 0) n = probe(set, finish(raw, i, RAW), n);
        if ((at & FOLDED) !== 0 && ascii) n = probe(set, finish(folded, i, FOLDED), n);
      }
    }
    if (i === len) break;
    const c = path.charCodeAt(i);
    raw = step(raw, c);
    if (c >= 0x41 && c <= 0x5a) folded = step(folded, c + 0x20);
    else {
      if (c >= 0x80) ascii = false;
      folded = step(folded, c);
    }
  }
  if ((kinds & (1 << RAW_EXACT)) !== 0) n = probe(set, finish(raw, len, RAW_EXACT), n);
  if (ascii) return (kinds & (1 << FOLDED_EXACT)) !== 0 ? probe(set, finish(folded, len, FOLDED_EXACT), n) : n;
  const lower = path.toLowerCase();
  let h = SEED;
  for (let i = 0; ; i++) {
    if (i <= max && ((lengths[i] as number) & FOLDED) !== 0) n = probe(set, finish(h, i, FOLDED), n);
    if (i === lower.length) break;
    h = step(h, lower.charCodeAt(i));
  }
  return (kinds & (1 << FOLDED_EXACT)) !== 0 ? probe(set, finish(h, lower.length, FOLDED_EXACT), n) : n;
}

function lookup<K>(map: Map<K, number>, key: K, n: number): number {
  const start = map.get(key);
  if (start === undefined) return n;
  hits[n] = start;
  return n + 1;
}

/** Records in scratch space the candidate lists the request hits and returns how many. */
export function collect(set: RuleSet, ctx: RequestContext): number {
  let n = 0;
  if (set.residual >= 0) hits[n++] = set.residual;
  if (set.pathKinds !== 0) n = collectPath(set, ctx.path, n);
  const peer = ctx.peer;
  if (peer !== null) {
    if (set.principal.size > 0) n = lookup(set.principal, peer.principal, n);
    if (set.unregistered >= 0 && !set.registered.has(peer.spiffeId)) hits[n++] = set.unregistered;
    if (set.namespace.size > 0 && peer.namespace !== undefined) n = lookup(set.namespace, peer.namespace, n);
  }
  if (set.authority.size > 0) n = lookup(set.authority, ctx.authority, n);
  if (set.host.size > 0) n = lookup(set.host, ctx.host, n);
  if (set.port.size > 0) n = lookup(set.port, ctx.port, n);
  return n;
}

/** Whether the rule at `order` matches: its flat code (the same answer) or its compiled `test`. */
export function testRule(set: RuleSet, order: number, ctx: RequestContext): boolean {
  const flat = set.flat;
  return flat === null ? (set.rules[order] as CompiledRule).test(ctx) : runFlat(flat, set.starts[order] as number, ctx);
}

/** Receives a candidate by position; returns true to end the scan. */
export type Accept = (set: RuleSet, order: number, ctx: RequestContext) => boolean;

/**
 * Visits the candidates of the last `collect` (n lists) in rule order, each rule once, until `accept`
 * returns true. The union is merged lazily, so a scan that stops early never orders the rest.
 */
export function scanCandidates(set: RuleSet, n: number, ctx: RequestContext, accept: Accept): void {
  const ids = set.candidates;
  if (n === 0) return;
  if (n === 1) {
    // One list (the common case) is walked in place.
    const start = hits[0] as number;
    const end = start + 1 + (ids[start] as number);
    for (let i = start + 1; i < end; i++) if (accept(set, ids[i] as number, ctx)) return;
    return;
  }
  for (let k = 0; k < n; k++) {
    const start = hits[k] as number;
    heads[k] = start + 1;
    ends[k] = start + 1 + (ids[start] as number);
  }
  let last = -1;
  while (true) {
    let best = -1;
    let bestOrder = 0x7fffffff;
    for (let k = 0; k < n; k++) {
      const h = heads[k] as number;
      if (h < (ends[k] as number)) {
        const o = ids[h] as number;
        if (o < bestOrder) {
          bestOrder = o;
          best = k;
        }
      }
    }
    if (best === -1) return;
    heads[best] = (heads[best] as number) + 1;
    // A rule filed under several hit keys is seen once.
    if (bestOrder === last) continue;
    last = bestOrder;
    if (accept(set, bestOrder, ctx)) return;
  }
}

let firstHit = -1;
function acceptFirst(set: RuleSet, order: number, ctx: RequestContext): boolean {
  if (!testRule(set, order, ctx)) return false;
  firstHit = order;
  return true;
}

/** The first rule (in order) whose matcher is true, testing only indexed candidates. */
export function firstMatch(set: RuleSet, ctx: RequestContext): CompiledRule | null {
  firstHit = -1;
  scanCandidates(set, collect(set, ctx), ctx, acceptFirst);
  return firstHit === -1 ? null : (set.rules[firstHit] as CompiledRule);
}

/** Every candidate the index yields for a request, in rule order (for tests and docs: which rules a request would test). */
export function candidates(set: RuleSet, ctx: RequestContext): CompiledRule[] {
  const out: CompiledRule[] = [];
  scanCandidates(set, collect(set, ctx), ctx, (_, order) => {
    out.push(set.rules[order] as CompiledRule);
    return false;
  });
  return out;
}

/** The same answer without the index: the reference the property tests compare against. */
export function firstMatchLinear(set: RuleSet, ctx: RequestContext): CompiledRule | null {
  for (const r of set.rules) if (r.test(ctx)) return r;
  return null;
}
