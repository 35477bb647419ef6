// Owns Calico's composition for one workload: which policies select it for ingress, tiers by order, policies by
// order within a tier, rules in order, each tier's end-of-tier action and the namespace profile's allow (cni-dialects.md §2.1, §2.2).

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions, PolicyRef, PolicyTier, RuleAction, TierRule, TierScope } from '../../ir.js';
import { emptyRegistry } from '../../peers.js';
import type { DialectOutput } from '../types.js';
import { Code } from '../../../codes.js';
import { viewLabels } from './peer.js';
import { lowerRule, type CalicoAction, type RuleEnv } from './rules.js';
import { isObject } from './schema.js';
import { evaluateSelector, labelsOf, parseSelector } from './selector.js';
import { POLICY_KINDS } from './validate.js';

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

  const selected: Selected[] = [];
  for (const doc of docs) {
    if (!POLICY_KINDS.has(doc.kind)) continue;
    const spec = isObject(doc.body.spec) ? doc.body.spec : {};
    const warn = warnAt(doc);
    if (doc.kind.startsWith('Staged')) {
      warn(Code.CALICO_NOT_ENFORCED, `a ${doc.kind} is a proposal Calico itself does not enforce; Portcullis does not evaluate it`, 'kind');
      continue;
    }
    const namespaced = doc.kind === 'NetworkPolicy';
    if (namespaced && (doc.metadata.namespace ?? 'default') !== w.namespace) continue;
    if (!selectorHolds(spec.selector, endpoint) || !selectorHolds(spec.serviceAccountSelector, serviceAccount)) continue;
    if (!namespaced && !selectorHolds(spec.namespaceSelector, namespace)) continue;
    if (spec.doNotTrack === true || spec.preDNAT === true) {
      // Untracked and pre-DNAT policies apply to host endpoints only, never to a pod's own traffic.
      warn(Code.CALICO_NOT_ENFORCED, `${spec.doNotTrack === true ? 'doNotTrack' : 'preDNAT'} policies apply to host endpoints, which a sidecar does not guard; skipped`, spec.doNotTrack === true ? 'spec.doNotTrack' : 'spec.preDNAT');
      continue;
    }
    const types = policyTypes(spec);
    if (types.has('Egress')) {
      warn(Code.CALICO_NOT_ENFORCED, 'egress rules govern traffic this workload sends, which its inbound sidecar does not see; they are not enforced here', Array.isArray(spec.egress) && spec.egress.length > 0 ? 'spec.egress' : 'spec.types');
    }
    if (!types.has('Ingress')) continue;
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
    applied.add(doc);
    selected.push({ doc, spec, tier, order: typeof spec.order === 'number' ? spec.order : undefined });
  }
  if (selected.length === 0) return { diagnostics, output: { tiers: [], applied } };

  const env = (doc: PolicyDocument): RuleEnv => ({
    registry, trustDomains: [w.trustDomain, ...w.trustDomainAliases], workload: w,
    workloadServiceAccountLabels: facts.serviceAccountLabels, portNames: options.linkerd.portNames,
    policyNamespace: doc.kind === 'NetworkPolicy' ? (doc.metadata.namespace ?? 'default') : undefined,
    warn: warnAt(doc),
  });
  const policyKey = (s: Selected) => `${s.doc.metadata.name}\0${s.doc.kind}\0${s.doc.metadata.namespace ?? ''}`;
  const out: PolicyTier[] = [];
  const used = [...tiers.values()].filter((t) => selected.some((s) => s.tier === t.name)).sort(byOrder((t) => t.order, (t) => t.name));
  for (const doc of docs) if (doc.kind === 'Tier' && used.some((t) => t.name === doc.metadata.name)) applied.add(doc);
  for (const tier of used) {
    const rules: TierRule[] = [];
    for (const s of selected.filter((x) => x.tier === tier.name).sort(byOrder((x) => x.order, policyKey))) {
      const namespaced = s.doc.kind === 'NetworkPolicy';
      const ref: PolicyRef = { dialect: 'calico', kind: s.doc.kind, namespace: namespaced ? (s.doc.metadata.namespace ?? 'default') : '', name: s.doc.metadata.name };
      const ingress = Array.isArray(s.spec.ingress) ? s.spec.ingress : [];
      const e = env(s.doc);
      ingress.forEach((r, i) => {
        if (!isObject(r)) return;
        const action = r.action as CalicoAction;
        rules.push({
          id: `tier[${tier.name}]-policy[${namespaced ? `${ref.namespace}/` : ''}${ref.name}]-ingress[${i}]`,
          policy: ref, action: ACTION[action], match: lowerRule(r, `spec.ingress[${i}]`, action, e), reason: REASON[action], namedAs: 'rule',
        });
      });
    }
    const otherwise: TierScope['otherwise'] = tier.defaultAction === 'Pass'
      ? { verdict: 'pass', reason: 'calico_tier_pass', policy: null }
      : { verdict: 'deny', reason: 'calico_end_of_tier_deny', policy: { dialect: 'calico', kind: 'Tier', namespace: '', name: tier.name } };
    out.push(calicoTier(tier.name, { ref: null, routes: null, rules, otherwise, shadow: null, rateLimit: null }));
  }
  // After the last tier, the namespace's profile allows (Calico on Kubernetes: `kns.<namespace>`).
  out.push(calicoTier('profile', {
    ref: null, routes: null, rules: [],
    otherwise: { verdict: 'allow', reason: 'calico_profile_allow', policy: { dialect: 'calico', kind: 'Profile', namespace: '', name: `kns.${w.namespace}` } },
    shadow: null, rateLimit: null,
  }));
  return { diagnostics, output: { tiers: out, applied } };
}

function calicoTier(name: string, scope: TierScope): PolicyTier {
  return { dialect: 'calico', name, group: 'calico', protocols: ['http', 'grpc', 'tcp'], ports: {}, anyPort: scope };
}
