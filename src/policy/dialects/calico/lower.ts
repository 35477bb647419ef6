// Owns Calico's composition for one workload: which policies select it for ingress, tiers by order, policies by
// order within a tier, rules in order, each tier's end-of-tier action and the namespace profile's allow (cni-dialects.md §2.1, §2.2);
// and the same walk with the staged policies committed, written out as the shadow rules of a preview tier (never enforced).

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions, PolicyRef, PolicyTier, RuleAction, TierRule, TierScope } from '../../ir.js';
import { emptyRegistry } from '../../peers.js';
import type { DialectOutput } from '../types.js';
import { Code } from '../../../codes.js';
import { walkAsShadow } from '../../preview.js';
import { viewLabels } from './peer.js';
import { lowerRule, type CalicoAction, type RuleEnv } from './rules.js';
import { isObject } from './schema.js';
import { evaluateSelector, labelsOf, parseSelector } from './selector.js';
import { NAMESPACED, POLICY_KINDS, STAGED_KINDS, stagedActionOf } from './validate.js';

type Obj = { [key: string]: JsonValue };

/** The tier every policy without `spec.tier` belongs to; Calico creates it with this order. */
const DEFAULT_TIER = 'default';
const DEFAULT_TIER_ORDER = 1_000_000;

interface TierInfo {
  name: string;
  /** undefined sorts after every ordered tier. */
  order: number | undefined;
  defaultAction: 'Deny' | 'Pass';
}

interface Selected {
  doc: PolicyDocument;
  spec: Obj;
  tier: string;
  order: number | undefined;
}

/** One applicable tier of a walk: its policies' ingress rules in order. */
interface WalkedTier {
  info: TierInfo;
  rules: TierRule[];
}

const ACTION: Record<CalicoAction, RuleAction> = { Allow: 'allow', Deny: 'deny', Pass: 'pass', Log: 'log' };
const REASON: Record<CalicoAction, string> = { Allow: 'calico_allow', Deny: 'calico_deny', Pass: 'calico_pass', Log: 'calico_log' };

/** Ascending order, absent orders last, then by name (tier.go, globalnetworkpolicy.go `Order`). */
function byOrder<T>(order: (x: T) => number | undefined, name: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const oa = order(a) ?? Number.POSITIVE_INFINITY;
    const ob = order(b) ?? Number.POSITIVE_INFINITY;
    if (oa !== ob) return oa < ob ? -1 : 1;
    const na = name(a);
    const nb = name(b);
    return na < nb ? -1 : na > nb ? 1 : 0;
  };
}

/** `types` as written, else inferred: no rules or ingress rules -> Ingress (plus Egress with egress rules); only egress -> Egress. */
export function policyTypes(spec: Obj): Set<'Ingress' | 'Egress'> {
  if (Array.isArray(spec.types) && spec.types.length > 0) return new Set(spec.types.filter((t): t is 'Ingress' | 'Egress' => t === 'Ingress' || t === 'Egress'));
  const ingress = Array.isArray(spec.ingress) && spec.ingress.length > 0;
  const egress = Array.isArray(spec.egress) && spec.egress.length > 0;
  if (egress && !ingress) return new Set(['Egress']);
  return new Set(egress ? ['Ingress', 'Egress'] : ['Ingress']);
}

function selectorHolds(text: JsonValue | undefined, labels: Record<string, string>): boolean {
  if (typeof text !== 'string') return true;
  const r = parseSelector(text);
  return r.ok && evaluateSelector(r.selector, labelsOf(labels));
}

export function lowerCalico(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput } {
  const diagnostics: Diagnostic[] = [];
  const applied = new Set<PolicyDocument>();
  const warnAt = (doc: PolicyDocument) => (code: string, message: string, fieldPath: string) =>
    diagnostics.push({ code, severity: 'warning', message, origin: doc.locate(fieldPath), fieldPath });

  const tiers = new Map<string, TierInfo>([[DEFAULT_TIER, { name: DEFAULT_TIER, order: DEFAULT_TIER_ORDER, defaultAction: 'Deny' }]]);
  for (const doc of docs) {
    if (doc.kind !== 'Tier') continue;
    const spec = isObject(doc.body.spec) ? doc.body.spec : {};
    tiers.set(doc.metadata.name, {
      name: doc.metadata.name,
      order: typeof spec.order === 'number' ? spec.order : doc.metadata.name === DEFAULT_TIER ? DEFAULT_TIER_ORDER : undefined,
      defaultAction: spec.defaultAction === 'Pass' ? 'Pass' : 'Deny',
    });
  }

  const w = options.workload;
  const registry = options.peers ?? emptyRegistry;
  const ownId = `spiffe://${w.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`;
  const own = registry.byId.get(ownId)?.[0];
  const facts = {
    namespace: w.namespace, serviceAccount: w.serviceAccount, labels: w.labels,
    namespaceLabels: w.namespaceLabels ?? own?.namespaceLabels ?? {}, serviceAccountLabels: own?.serviceAccountLabels ?? {},
  };
  const endpoint = viewLabels('pod', facts);
  const namespace = viewLabels('namespace', facts);
  const serviceAccount = viewLabels('serviceAccount', facts);

  /** Whether the policy takes part for this workload's ingress, and where; each document is judged (and warned about) once. */
  const selection = new Map<PolicyDocument, Selected | null>();
  const select = (doc: PolicyDocument): Selected | null => {
    const known = selection.get(doc);
    if (known !== undefined) return known;
    const result = selectPolicy(doc);
    selection.set(doc, result);
    return result;
  };
  const selectPolicy = (doc: PolicyDocument): Selected | null => {
    const spec = isObject(doc.body.spec) ? doc.body.spec : {};
    const warn = warnAt(doc);
    const namespaced = NAMESPACED.has(doc.kind);
    if (namespaced && (doc.metadata.namespace ?? 'default') !== w.namespace) return null;
    if (!selectorHolds(spec.selector, endpoint) || !selectorHolds(spec.serviceAccountSelector, serviceAccount)) return null;
    if (!namespaced && !selectorHolds(spec.namespaceSelector, namespace)) return null;
    if (spec.doNotTrack === true || spec.preDNAT === true) {
      // Untracked and pre-DNAT policies apply to host endpoints only, never to a pod's own traffic.
      warn(Code.CALICO_NOT_ENFORCED, `${spec.doNotTrack === true ? 'doNotTrack' : 'preDNAT'} policies apply to host endpoints, which a sidecar does not guard; skipped`, spec.doNotTrack === true ? 'spec.doNotTrack' : 'spec.preDNAT');
      return null;
    }
    const types = policyTypes(spec);
    if (types.has('Egress')) {
      warn(Code.CALICO_NOT_ENFORCED, 'egress rules govern traffic this workload sends, which its inbound sidecar does not see; they are not enforced here', Array.isArray(spec.egress) && spec.egress.length > 0 ? 'spec.egress' : 'spec.types');
    }
    if (!types.has('Ingress')) return null;
    const tier = typeof spec.tier === 'string' && spec.tier !== '' ? spec.tier : DEFAULT_TIER;
    if (!tiers.has(tier)) {
      warn(Code.CALICO_TIER_UNKNOWN, `tier "${tier}" is not defined by any Tier resource; the policy is placed in it after every ordered tier, ending in Deny`, 'spec.tier');
      tiers.set(tier, { name: tier, order: undefined, defaultAction: 'Deny' });
    }
    const dot = doc.metadata.name.indexOf('.');
    const prefix = dot > 0 ? doc.metadata.name.slice(0, dot) : undefined;
    if (prefix !== undefined && prefix !== tier && tiers.has(prefix)) {
      warn(Code.CALICO_TIER_PREFIX, `the name starts with "${prefix}.", as policies of tier "${prefix}" were once required to be named, but spec.tier places the policy in tier "${tier}"`, 'metadata.name');
    }
    return { doc, spec, tier, order: typeof spec.order === 'number' ? spec.order : undefined };
  };

  // The enforced set, and the set as it would be with every staged policy committed: a staged policy replaces the
  // enforced policy of its kind, namespace and name (or adds it); `stagedAction: Delete` removes that policy
  // (api/pkg/apis/projectcalico/v3 ConvertStagedPolicyToEnforced).
  const enforced = new Map<string, PolicyDocument>();
  const staged: PolicyDocument[] = [];
  for (const doc of docs) {
    if (!POLICY_KINDS.has(doc.kind)) continue;
    if (STAGED_KINDS.has(doc.kind)) staged.push(doc); else enforced.set(policyKey(doc, doc.kind), doc);
  }
  const committed = new Map(enforced);
  let previewed = false;
  for (const doc of staged) {
    const key = policyKey(doc, doc.kind.slice('Staged'.length));
    const replaced = enforced.get(key);
    if (replaced !== undefined && select(replaced) !== null) previewed = true;
    if (stagedActionOf(doc) === 'Delete') { committed.delete(key); continue; }
    committed.set(key, doc);
    if (select(doc) !== null) { previewed = true; applied.add(doc); }
  }
  const selectedOf = (set: Iterable<PolicyDocument>): Selected[] => [...set].map(select).filter((x): x is Selected => x !== null);
  const live = selectedOf(enforced.values());
  for (const s of live) applied.add(s.doc);
  const preview = previewed ? selectedOf(committed.values()) : [];

  /** Each policy's rules are lowered once, for both walks (so each warning is reported once). */
  const lowered = new Map<PolicyDocument, TierRule[]>();
  const rulesOf = (s: Selected): TierRule[] => {
    const known = lowered.get(s.doc);
    if (known !== undefined) return known;
    const namespaced = NAMESPACED.has(s.doc.kind);
    const ref: PolicyRef = { dialect: 'calico', kind: s.doc.kind, namespace: namespaced ? (s.doc.metadata.namespace ?? 'default') : '', name: s.doc.metadata.name };
    // Calico names a staged policy `staged:<name>` in its flow logs; the rule ids say which walk a rule is from.
    const name = `${namespaced ? `${ref.namespace}/` : ''}${STAGED_KINDS.has(s.doc.kind) ? 'staged:' : ''}${ref.name}`;
    const env: RuleEnv = {
      registry, trustDomains: [w.trustDomain, ...w.trustDomainAliases], workload: w,
      workloadServiceAccountLabels: facts.serviceAccountLabels, portNames: options.linkerd.portNames,
      policyNamespace: namespaced ? ref.namespace : undefined, warn: warnAt(s.doc),
    };
    const rules: TierRule[] = [];
    const ingress = Array.isArray(s.spec.ingress) ? s.spec.ingress : [];
    ingress.forEach((r, i) => {
      if (!isObject(r)) return;
      const action = r.action as CalicoAction;
      rules.push({
        id: `tier[${s.tier}]-policy[${name}]-ingress[${i}]`,
        policy: ref, action: ACTION[action], match: lowerRule(r, `spec.ingress[${i}]`, action, env), reason: REASON[action], namedAs: 'rule',
      });
    });
    lowered.set(s.doc, rules);
    return rules;
  };
  /** The tiers the selected policies sit in, by order, each with its policies' rules by policy order. */
  const walk = (selected: Selected[]): WalkedTier[] =>
    [...tiers.values()].filter((t) => selected.some((s) => s.tier === t.name)).sort(byOrder((t) => t.order, (t) => t.name))
      .map((info) => ({ info, rules: selected.filter((x) => x.tier === info.name).sort(byOrder((x) => x.order, selectedKey)).flatMap(rulesOf) }));

  const tiersOf = (selected: Selected[]): PolicyTier[] => {
    if (selected.length === 0) return [];
    const out = walk(selected).map(({ info, rules }) => calicoTier(info.name, {
      ref: null, routes: null, rules, shadow: null, rateLimit: null,
      otherwise: info.defaultAction === 'Pass'
        ? { verdict: 'pass', reason: 'calico_tier_pass', policy: null }
        : { verdict: 'deny', reason: 'calico_end_of_tier_deny', policy: { dialect: 'calico', kind: 'Tier', namespace: '', name: info.name } },
    }));
    // After the last tier, the namespace's profile allows (Calico on Kubernetes: `kns.<namespace>`).
    out.push(calicoTier('profile', {
      ref: null, routes: null, rules: [],
      otherwise: { verdict: 'allow', reason: 'calico_profile_allow', policy: { dialect: 'calico', kind: 'Profile', namespace: '', name: `kns.${w.namespace}` } },
      shadow: null, rateLimit: null,
    }));
    return out;
  };
  const liveTiers = tiersOf(live);
  const previewTiers = tiersOf(preview);
  for (const doc of docs) {
    if (doc.kind === 'Tier' && [...liveTiers, ...previewTiers].some((t) => t.name === doc.metadata.name)) applied.add(doc);
  }
  if (!previewed) return { diagnostics, output: { tiers: liveTiers, applied } };
  // A tier that always passes, first in the group: its shadow result is the committed walk's decision.
  const staging = calicoTier('staged', {
    ref: null, routes: null, rules: [], otherwise: { verdict: 'pass', reason: 'calico_staged_preview', policy: null },
    shadow: walkAsShadow(previewTiers, 'STAGED'), rateLimit: null,
  });
  return { diagnostics, output: { tiers: [staging, ...liveTiers], applied } };
}

/** Kind, namespace and name: what a staged policy and the enforced policy it stands for share. */
function policyKey(doc: PolicyDocument, kind: string): string {
  return `${kind}\0${NAMESPACED.has(kind) ? (doc.metadata.namespace ?? 'default') : ''}\0${doc.metadata.name}`;
}

/** Equal orders run by name, then kind, then namespace. */
const selectedKey = (s: Selected) => `${s.doc.metadata.name}\0${s.doc.kind}\0${s.doc.metadata.namespace ?? ''}`;

function calicoTier(name: string, scope: TierScope): PolicyTier {
  return { dialect: 'calico', name, group: 'calico', protocols: ['http', 'grpc', 'tcp'], ports: {}, anyPort: scope };
}
