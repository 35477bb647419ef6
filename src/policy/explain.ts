// Owns explain(snapshot, context): a person-readable account of a decision, rule by rule and field by
// field with the values actually seen. Slow on purpose (no index); never used on the request path.
import type { RequestContext } from './context-types.js';
import type { Decision } from './decision.js';
import { evaluate, matcherEnvFor, prepareSnapshot } from './evaluate.js';
import { explainLinkerd } from './linkerd-engine.js';
import type { IstioAction, IstioChain, IstioRule, Matcher, PathMatcher, PolicyRef, PolicySnapshot, StringMatcher } from './ir.js';
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
  action: IstioAction;
  dryRun: boolean;
  provider?: string;
  matched: boolean;
  trace: MatchTrace;
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

export interface IstioExplanation {
  chain: 'http' | 'tcp';
  hasEnforcedAllow: boolean;
  hasShadowAllow: boolean;
  /** Rules in evaluation order: CUSTOM, AUDIT, DENY, ALLOW (each by rule id). */
  rules: RuleExplanation[];
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
  /** Null when no Istio AuthorizationPolicy selects the workload. */
  istio: IstioExplanation | null;
  /** The Linkerd engine's own explanation (`explainLinkerd`: its decision and steps), when Linkerd policies exist. */
  linkerd?: unknown;
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
function describeLeaf(m: Matcher, ctx: RequestContext): { expected: string; actual: string | null } {
  switch (m.type) {
    case 'peer.principal': return { expected: describeString(m.match), actual: ctx.peer?.principal ?? null };
    case 'peer.authenticated': return { expected: 'an mTLS peer identity', actual: ctx.peer?.spiffeId ?? null };
    case 'peer.linkerd-identity': return { expected: `identities ${JSON.stringify(m.exact)} or suffixes ${JSON.stringify(m.suffixes)}`, actual: ctx.peer?.spiffeId ?? null };
    case 'source.ip': return { expected: `in ${JSON.stringify(m.cidrs)}`, actual: orNull(ctx.sourceIp) };
    case 'remote.ip': return { expected: `in ${JSON.stringify(m.cidrs)}`, actual: orNull(ctx.remoteIp) };
    case 'destination.ip': return { expected: `in ${JSON.stringify(m.cidrs)}`, actual: orNull(ctx.destinationIp) };
    case 'destination.port': return { expected: `one of ${JSON.stringify(m.ports)}`, actual: String(ctx.port) };
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
      return { node: m.type, matched, ...describeLeaf(m, ctx) };
    }
  }
}

function explainRules(chain: IstioChain, ctx: RequestContext, env: MatcherEnv): RuleExplanation[] {
  const byId = (list: IstioRule[]) => [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out: RuleExplanation[] = [];
  for (const list of [chain.custom, chain.audit, chain.deny, chain.allow]) {
    for (const r of byId(list)) {
      const trace = traceMatcher(r.match, ctx, env);
      const entry: RuleExplanation = { id: r.id, policy: r.policy, action: r.action, dryRun: r.dryRun, matched: trace.matched, trace };
      if (r.provider !== undefined) entry.provider = r.provider;
      out.push(entry);
    }
  }
  return out;
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

export function explain(snapshot: PolicySnapshot, ctx: RequestContext): ExplainReport {
  const env = matcherEnvFor(snapshot);
  const chainName = ctx.protocol === 'tcp' ? 'tcp' : 'http';
  const chain = snapshot.istio ? snapshot.istio[chainName] : undefined;
  const preparedLinkerd = prepareSnapshot(snapshot).linkerd;
  const report: ExplainReport = {
    revision: snapshot.revision,
    request: {
      protocol: ctx.protocol, method: ctx.method, authority: ctx.authority, path: ctx.path, query: ctx.query,
      peer: ctx.peer?.spiffeId ?? null, sourceIp: ctx.sourceIp, port: ctx.port,
      jwt: ctx.jwt ? { issuer: ctx.jwt.issuer, subject: ctx.jwt.subject } : null,
    },
    decision: evaluate(snapshot, ctx),
    documents: snapshot.documents.map((d) => {
      const doc: DocumentExplanation = { file: d.file, line: d.line, kind: d.kind, namespace: d.namespace, name: d.name, applies: d.applies };
      if (!d.applies) doc.why = whyNot(snapshot, d.namespace, d.kind);
      return doc;
    }),
    istio: chain ? { chain: chainName, hasEnforcedAllow: chain.hasEnforcedAllow, hasShadowAllow: chain.hasShadowAllow, rules: explainRules(chain, ctx, env) } : null,
  };
  if (preparedLinkerd !== null) report.linkerd = explainLinkerd(preparedLinkerd, ctx);
  return report;
}
