// Owns explain(snapshot, context): a person-readable account of a decision for every dialect, tier by tier,
// rule by rule and field by field with the values seen, naming the failing conditions of a deny. It runs
// the one evaluator with a tracer (no index: every rule is tested); never used on the request path.
import type { RequestContext } from './context-types.js';
import type { Decision } from './decision.js';
import { evaluate, type Tracer } from './evaluate.js';
import type { HeaderEdit, Matcher, PathMatcher, PolicyRef, PolicyTier, Route, RuleAction, StringMatcher, TierRule, TierScope } from './ir.js';
import type { PolicySnapshot } from './snapshot.js';
import { compileMatcher, headerValue } from './match/compile.js';
import { lookupClaim } from './match/claims.js';
import { queryParams } from './match/query.js';
import type { MatcherEnv } from './match/types.js';

/** One node of a rule's matcher tree, with its outcome for this request. */
export interface MatchTrace {
  /** `and` / `or` / `not` / `any` / `none`, or the attribute a leaf reads (`request.path`, `peer.principal`, ...). */
  node: string;
  matched: boolean;
  /** Leaves: what the policy asks for, e.g. `prefix "/api/"`, `in [10.0.0.0/8]`. */
  expected?: string;
  /** Leaves: the value seen on the request; null when the attribute is absent (plaintext, no token, no header). */
  actual?: string | null;
  children?: MatchTrace[];
}

export interface RuleExplanation {
  id: string;
  policy: PolicyRef;
  action: RuleAction;
  /** A dry-run rule: evaluated into the shadow result, never enforced. */
  dryRun: boolean;
  provider?: string;
  /** The header edit a matching rule makes on the forwarded request (Cilium headerMatches ADD/DELETE/REPLACE). */
  edit?: HeaderEdit;
  matched: boolean;
  trace: MatchTrace;
  /** For a rule that did not match: the conditions that failed (`request.method wants exact "GET", saw "POST"`). */
  failed: string[];
}

export interface DocumentExplanation {
  file: string;
  line: number;
  kind: string;
  namespace: string;
  name: string;
  applies: boolean;
  /** Why a document takes no part, when it does not. */
  why?: string;
}

/** One tier that judged the request, with every step in evaluation order. */
export interface TierExplanation {
  dialect: string;
  tier: string;
  /** The scope for the request's port: what it stands for (`Server shop/api`), or null. */
  scope: string | null;
  /** The route selected (label and precedence score), `none` (not found), or undefined when the scope does not route. */
  route?: { label: string; score: readonly number[] } | 'none';
  /** Rules in evaluation order (the route's, then the scope's, then dry-run rules). */
  rules: RuleExplanation[];
  /** When no rule decides. */
  otherwise: string;
  notes: string[];
  outcome: { verdict: string; reason: string };
}

export interface ExplainReport {
  revision: string;
  request: {
    protocol: string;
    method: string;
    authority: string;
    path: string;
    query: string;
    peer: string | null;
    sourceIp: string;
    port: number;
    jwt: { issuer: string; subject: string } | null;
  };
  decision: Decision;
  documents: DocumentExplanation[];
  /** Every tier that judged the request, in order (tiers after a deny, or of an allowed group, are not). */
  tiers: TierExplanation[];
  /** For a deny: the conditions that made it (the deny rule that matched, or what each allow rule lacked). */
  because: string[];
}

function describeString(m: StringMatcher): string {
  switch (m.kind) {
    case 'present': return 'present (non-empty)';
    case 'regex': return `regex ${JSON.stringify(m.pattern)}`;
    default: return `${m.kind} ${JSON.stringify(m.value)}${m.ignoreCase ? ' (ignore case)' : ''}`;
  }
}

function describePath(m: PathMatcher): string {
  if (m.kind === 'template') return `template "/${m.segments.map((s) => (s.kind === 'one' ? '{*}' : s.kind === 'many' ? '{**}' : s.value)).join('/')}"`;
  if (m.kind === 'segment-prefix') return `path prefix ${JSON.stringify(m.value)}`;
  return describeString(m);
}

const orNull = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

/** What a leaf expects and what the request shows for it. */
function describeLeaf(m: Matcher, ctx: RequestContext, env: MatcherEnv): { expected: string; actual: string | null } {
  switch (m.type) {
    case 'peer.registered': {
      const ids = m.spiffeIds.length === 0 ? 'no registered identity' : m.spiffeIds.length <= 5 ? m.spiffeIds.join(', ') : `${m.spiffeIds.slice(0, 5).join(', ')} and ${String(m.spiffeIds.length - 5)} more`;
      const expected = `${m.describe}: ${ids}${m.unknown ? '; or any identity not in the registry' : ''}`;
      if (ctx.peer === null) return { expected, actual: null };
      return { expected, actual: env.peers?.byId.has(ctx.peer.spiffeId) === true ? ctx.peer.spiffeId : `${ctx.peer.spiffeId} (not in the registry)` };
    }
    case 'peer.principal': return { expected: describeString(m.match), actual: ctx.peer?.principal ?? null };
    case 'peer.authenticated': return { expected: 'an mTLS peer identity', actual: ctx.peer?.spiffeId ?? null };
    case 'peer.name': return { expected: `name ${JSON.stringify(m.template)} in ${JSON.stringify(m.exact)} or suffixes ${JSON.stringify(m.suffixes)}`, actual: ctx.peer?.spiffeId ?? null };
    case 'source.ip': return { expected: `in ${JSON.stringify(m.cidrs)}`, actual: orNull(ctx.sourceIp) };
    case 'remote.ip': return { expected: `in ${JSON.stringify(m.cidrs)}`, actual: orNull(ctx.remoteIp) };
    case 'destination.ip': return { expected: `in ${JSON.stringify(m.cidrs)}`, actual: orNull(ctx.destinationIp) };
    case 'destination.port': return { expected: `one of ${JSON.stringify(m.ports)}`, actual: String(ctx.port) };
    case 'peer.namespace': {
      const ns = m.namespaces === undefined ? '' : ` in namespace ${JSON.stringify(m.namespaces)}`;
      const sa = m.serviceAccounts === undefined ? '' : ` with service account ${JSON.stringify(m.serviceAccounts)}`;
      return { expected: `a pod identity <td>/ns/<ns>/sa/<sa> of ${JSON.stringify(m.trustDomains)}${ns}${sa}`, actual: ctx.peer?.spiffeId ?? null };
    }
    case 'destination.portRange': return { expected: `${m.from}-${m.to}`, actual: String(ctx.port) };
    case 'connection.sni': return { expected: describeString(m.match), actual: orNull(ctx.sni) };
    case 'request.method': return { expected: describeString(m.match), actual: orNull(ctx.method) };
    case 'request.host': return { expected: `${describeString(m.match)} (ignore case${m.anyPort === true ? ', any port: compatibility secure' : ''})`, actual: orNull(ctx.authority) };
    case 'request.path': return { expected: describePath(m.match), actual: orNull(ctx.path) };
    case 'request.header': {
      const each = m.elements === 'any' ? ' (whole value or any `,` element)' : m.elements === 'all' ? ' (every `,` element)' : '';
      return { expected: `${m.name}: ${describeString(m.match)}${each}`, actual: headerValue(ctx, m.name.toLowerCase()) ?? null };
    }
    case 'request.query': {
      const v = ctx.protocol === 'tcp' ? undefined : queryParams(ctx).get(m.name);
      return { expected: `${m.name}= ${describeString(m.match)}`, actual: v === undefined ? null : v.join('&') };
    }
    case 'jwt.principal': return { expected: `iss ${describeString(m.issuer)}, sub ${describeString(m.subject)}`, actual: ctx.jwt ? `${ctx.jwt.issuer}/${ctx.jwt.subject}` : null };
    case 'jwt.claim': {
      const v = ctx.jwt ? lookupClaim(ctx.jwt.claims, m.path) : undefined;
      return { expected: `claim [${m.path.join('][')}] ${describeString(m.match)}`, actual: v === undefined ? null : JSON.stringify(v) };
    }
    case 'unsupported': return { expected: `${m.key} (not supported by Portcullis: never matches)`, actual: null };
    default: return { expected: m.type, actual: null };
  }
}

export function traceMatcher(m: Matcher, ctx: RequestContext, env: MatcherEnv): MatchTrace {
  switch (m.type) {
    case 'any': return { node: 'any', matched: true };
    case 'none': return { node: 'none', matched: false };
    case 'and': {
      const children = m.of.map((c) => traceMatcher(c, ctx, env));
      return { node: 'and', matched: children.every((c) => c.matched), children };
    }
    case 'or': {
      const children = m.of.map((c) => traceMatcher(c, ctx, env));
      return { node: 'or', matched: children.some((c) => c.matched), children };
    }
    case 'not': {
      const child = traceMatcher(m.of, ctx, env);
      return { node: 'not', matched: !child.matched, children: [child] };
    }
    default: {
      let matched: boolean;
      try {
        matched = compileMatcher(m, env)(ctx);
      } catch {
        matched = false;
      }
      return { node: m.type, matched, ...describeLeaf(m, ctx, env) };
    }
  }
}

function whyNot(snapshot: PolicySnapshot, namespace: string, kind: string): string {
  const { workload, rootNamespace } = snapshot.options;
  if (kind === 'AuthorizationPolicy' || kind === 'RequestAuthentication') {
    if (namespace !== workload.namespace && namespace !== rootNamespace) {
      return `namespace ${JSON.stringify(namespace)} is neither the workload's (${JSON.stringify(workload.namespace)}) nor the root namespace (${JSON.stringify(rootNamespace)})`;
    }
    return 'its selector does not match the workload labels, or it uses targetRefs (ignored by sidecars)';
  }
  return 'it does not select this workload';
}

/** The leaves that made a matcher false, as `node wants X, saw Y` (`not` leaves read `not (...)`). */
export function failingConditions(t: MatchTrace): string[] {
  if (t.matched) return [];
  if (t.node === 'not') return (t.children ?? []).map((c) => `not (${describeTrace(c)})`);
  if (t.children === undefined) return [describeTrace(t)];
  return t.children.filter((c) => !c.matched).flatMap(failingConditions);
}

function describeTrace(t: MatchTrace): string {
  if (t.expected === undefined) return t.node;
  return `${t.node} wants ${t.expected}, saw ${t.actual === null || t.actual === undefined ? '(absent)' : JSON.stringify(t.actual)}`;
}

function describeScope(scope: TierScope): string | null {
  const ref = scope.ref;
  if (ref === null) return null;
  return ref.kind === 'default' ? `default (${ref.name})` : `${ref.kind} ${ref.namespace}/${ref.name}`;
}

function describeOtherwise(scope: TierScope): string {
  const o = scope.otherwise;
  return `${o.verdict} ${o.reason}`;
}

/** Collects the evaluator's steps into TierExplanations. */
function collector(ctx: RequestContext, snapshot: PolicySnapshot): { tracer: Tracer; tiers: TierExplanation[] } {
  const tiers: TierExplanation[] = [];
  const env = snapshot.compiled.env;
  const current = (): TierExplanation => tiers[tiers.length - 1] as TierExplanation;
  const tracer: Tracer = {
    scope(tier: PolicyTier, scope: TierScope) {
      tiers.push({ dialect: tier.dialect, tier: tier.name, scope: describeScope(scope), rules: [], otherwise: describeOtherwise(scope), notes: [], outcome: { verdict: 'pass', reason: '' } });
    },
    route(route: Route | null, score: readonly number[] | null) {
      current().route = route === null ? 'none' : { label: route.label, score: score ?? [] };
    },
    rule(rule: TierRule, matched: boolean, shadow: boolean) {
      const trace = traceMatcher(rule.match, ctx, env);
      const entry: RuleExplanation = { id: rule.id, policy: rule.policy, action: rule.action, dryRun: shadow, matched, trace, failed: matched ? [] : failingConditions(trace) };
      if (rule.provider !== undefined) entry.provider = rule.provider;
      if (rule.edit !== undefined) entry.edit = rule.edit;
      current().rules.push(entry);
    },
    note(text: string) {
      current().notes.push(text);
    },
    outcome(_tier: PolicyTier, verdict: string, reason: string) {
      current().outcome = { verdict, reason };
    },
  };
  return { tracer, tiers };
}

/** Why a refusal happened, in terms of conditions: the deny rule that matched, or what each allow rule lacked. */
function because(decision: Decision, tiers: readonly TierExplanation[]): string[] {
  if (decision.verdict === 'allow') return [];
  const deciding = [...tiers].reverse().find((t) => t.outcome.verdict !== 'allow' && t.outcome.verdict !== 'pass');
  if (!deciding) return [];
  if (deciding.route === 'none') return ['no route of the scope matches the request'];
  const hit = deciding.rules.find((r) => !r.dryRun && r.matched && (r.action === 'deny' || r.action === 'custom'));
  if (hit) return [`${hit.action} rule ${hit.id} matched${hit.action === 'custom' ? ` (external authorizer ${hit.provider ?? 'none'} is not available: fail closed)` : ''}`];
  const admitting = deciding.rules.filter((r) => !r.dryRun && (r.action === 'allow' || r.action === 'audit'));
  if (admitting.length === 0) return [`no rule admits the request (${deciding.otherwise})`, ...deciding.notes];
  return admitting.map((r) => `${r.id} did not match: ${r.failed.join('; ') || 'it never matches'}`);
}

export function explain(snapshot: PolicySnapshot, ctx: RequestContext): ExplainReport {
  const { tracer, tiers } = collector(ctx, snapshot);
  const decision = evaluate(snapshot, ctx, tracer);
  return {
    revision: snapshot.revision,
    request: {
      protocol: ctx.protocol, method: ctx.method, authority: ctx.authority, path: ctx.path, query: ctx.query,
      peer: ctx.peer?.spiffeId ?? null, sourceIp: ctx.sourceIp, port: ctx.port,
      jwt: ctx.jwt ? { issuer: ctx.jwt.issuer, subject: ctx.jwt.subject } : null,
    },
    decision,
    documents: snapshot.documents.map((d) => {
      const doc: DocumentExplanation = { file: d.file, line: d.line, kind: d.kind, namespace: d.namespace, name: d.name, applies: d.applies };
      if (!d.applies) doc.why = whyNot(snapshot, d.namespace, d.kind);
      return doc;
    }),
    tiers,
    because: because(decision, tiers),
  };
}
