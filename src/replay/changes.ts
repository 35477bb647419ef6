// Owns what replay reports: each re-decided request classified against its baseline (unchanged, newly denied,
// newly allowed, changed reason) and the changes grouped by policy/rule, peer and path pattern, memory bounded.

import type { Outcome } from './recorded-event.js';

export type Change = 'unchanged' | 'newly_denied' | 'newly_allowed' | 'changed_reason';
export const changeKinds = ['newly_denied', 'newly_allowed', 'changed_reason'] as const;
export type ChangeKind = (typeof changeKinds)[number];

/** Only an allow lets a request through; every other verdict (deny, 401, 404, 400) keeps it out. */
const allowed = (o: Outcome): boolean => o.verdict === 'allow';

const policyKey = (o: Outcome): string => (o.policy ? `${o.dialect ?? ''} ${o.policy.kind} ${o.policy.namespace}/${o.policy.name}` : '');

export function classify(baseline: Outcome, candidate: Outcome): Change {
  const a = allowed(baseline);
  const b = allowed(candidate);
  if (a && !b) return 'newly_denied';
  if (!a && b) return 'newly_allowed';
  const sameReason = baseline.verdict === candidate.verdict
    && (baseline.reason === null || candidate.reason === null || baseline.reason === candidate.reason)
    && policyKey(baseline) === policyKey(candidate) && baseline.rule === candidate.rule && baseline.authorization === candidate.authorization;
  return sameReason ? 'unchanged' : 'changed_reason';
}

/** `allow (allow_policy_matched) by istio AuthorizationPolicy shop/orders, rule ns[shop]-policy[orders]-rule[0]`. */
export function describeOutcome(o: Outcome): string {
  const by = o.policy ? ` by ${policyKey(o).trim()}` : '';
  const rule = o.rule ? `, rule ${o.rule}` : '';
  const authz = o.authorization ? `, authorized by ${o.authorization}` : '';
  return `${o.verdict}${o.reason ? ` (${o.reason})` : ''}${by}${rule}${authz}`;
}

const ID_SEGMENT = /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{12,}|(?=[^/]*\d)[A-Za-z0-9_-]{20,})$/i;

/** Patterns of paths already seen: changed requests repeat their paths. Bounded (cleared when full). */
const patterns = new Map<string, string>();
const MAX_CACHED_PATTERNS = 10_000;

/** Collapses path segments that look like ids (numbers, UUIDs, hex, long tokens) to `*`: `/orders/42` -> `/orders/*`. */
export function pathPattern(path: string): string {
  if (path === '' || path === '*') return path === '' ? '(no path: tcp)' : path;
  let pattern = patterns.get(path);
  if (pattern === undefined) {
    pattern = path.split('/').map((s) => (ID_SEGMENT.test(s) ? '*' : s)).join('/');
    if (patterns.size >= MAX_CACHED_PATTERNS) patterns.clear();
    patterns.set(path, pattern);
  }
  return pattern;
}

/** A request shown as an example of a group. */
export interface Sample {
  /** `file:line` of the event. */
  at: string;
  decisionId: string;
  time: string;
  method: string;
  path: string;
  authority: string;
  /** The workload port (the only place an opaque TCP connection has). */
  port: number;
  peer: string | null;
  baseline: string;
  candidate: string;
  /** Newly denied: the conditions that failed under the candidate (explain tracer). */
  failing?: string[];
}

export interface Group { key: string; count: number; samples: Sample[] }

/** Distinct groups kept per dimension; later keys are counted under `(other groups)`. */
export const MAX_GROUPS = 1000;
const OTHER = '(other groups)';

class Groups {
  private readonly map = new Map<string, Group>();
  constructor(private readonly samplesPerGroup: number) {}
  /** The group `key` falls into (created while under the cap). */
  slot(key: string): Group {
    let g = this.map.get(key);
    if (!g) {
      const k = this.map.size >= MAX_GROUPS ? OTHER : key;
      g = this.map.get(k);
      if (!g) { g = { key: k, count: 0, samples: [] }; this.map.set(k, g); }
    }
    return g;
  }
  /** Requests already shown per group: samples of one group show different requests. */
  private readonly shown = new Map<Group, string[]>();
  wantsSample(g: Group, request: string): boolean {
    if (g.samples.length >= this.samplesPerGroup) return false;
    const shown = this.shown.get(g) ?? [];
    if (shown.includes(request)) return false;
    shown.push(request);
    this.shown.set(g, shown);
    return true;
  }
  sorted(): Group[] { return [...this.map.values()].sort((a, b) => b.count - a.count || a.key.localeCompare(b.key)); }
}

export interface ChangeGroups { byRule: Groups; byPeer: Groups; byPath: Groups }

export interface ChangeInput {
  kind: Change;
  baseline: Outcome;
  candidate: Outcome;
  peer: string | null;
  path: string;
  /** Method, path and peer: a group's samples differ in it. */
  request: string;
  /** Builds the sample only when some group still wants one (the failing conditions cost an explain run). */
  sample: () => Sample;
}

/** Counts and groups; holds at most MAX_GROUPS groups x samplesPerGroup samples per dimension and kind. */
export class ChangeTally {
  readonly counts: Record<Change, number> = { unchanged: 0, newly_denied: 0, newly_allowed: 0, changed_reason: 0 };
  readonly groups: Record<ChangeKind, ChangeGroups>;
  constructor(samplesPerGroup: number) {
    const make = (): ChangeGroups => ({ byRule: new Groups(samplesPerGroup), byPeer: new Groups(samplesPerGroup), byPath: new Groups(samplesPerGroup) });
    this.groups = { newly_denied: make(), newly_allowed: make(), changed_reason: make() };
  }

  /** An unchanged request is only counted (its details need not be assembled). */
  addUnchanged(): void { this.counts.unchanged++; }

  add(c: ChangeInput): void {
    this.counts[c.kind]++;
    if (c.kind === 'unchanged') return;
    const g = this.groups[c.kind];
    const slots = [
      [g.byRule, g.byRule.slot(`${describeOutcome(c.baseline)} -> ${describeOutcome(c.candidate)}`)],
      [g.byPeer, g.byPeer.slot(c.peer ?? '(plaintext: no mTLS identity)')],
      [g.byPath, g.byPath.slot(pathPattern(c.path))],
    ] as const;
    let sample: Sample | undefined;
    for (const [groups, slot] of slots) {
      slot.count++;
      if (groups.wantsSample(slot, c.request)) slot.samples.push(sample ??= c.sample());
    }
  }
}
