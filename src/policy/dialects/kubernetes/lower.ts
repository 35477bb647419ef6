// Owns lowering the Kubernetes dialect for one workload: Admin tier (ClusterNetworkPolicy Admin, AdminNetworkPolicy,
// by priority) -> NetworkPolicy tier (union of allows, isolation) -> Baseline tier -> allow (cni-dialects.md §3, §4.2).

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions, Matcher, PolicyRef, PolicyTier, RuleAction, TierDefault, TierRule, TierScope } from '../../ir.js';
import { selectorMatches } from '../../selector.js';
import type { DialectOutput } from '../types.js';
import { labelKeysBeyondName, mixedIdentities, peerEnv, podPeer, workloadNamespaceLabels, type NamespaceScope, type PeerEnv, type PeerUse } from './peers.js';
import { adminPolicyPorts, clusterPolicyProtocols, networkPolicyPorts, type UnresolvedPort } from './ports.js';
import { walkAsShadow } from '../../preview.js';
import { STAGED_NETWORK_POLICY, isObject } from './schema.js';
import { Code } from '../../../codes.js';

export const DIALECT = 'kubernetes';

type Obj = { [key: string]: JsonValue };
type Warn = (doc: PolicyDocument, code: string, message: string, fieldPath: string, severity?: Diagnostic['severity']) => void;

const objects = (v: JsonValue | undefined): Obj[] => (Array.isArray(v) ? v.filter(isObject) : []);
const present = (v: JsonValue | undefined): boolean => v !== undefined && v !== null;
const and = (of: Matcher[]): Matcher => (of.length === 1 ? (of[0] as Matcher) : { type: 'and', of });
/** AND of the conditions that constrain something (`any` children dropped; none left = any). */
const allOf = (of: Matcher[]): Matcher => {
  const real = of.filter((m) => m.type !== 'any');
  return real.length === 0 ? { type: 'any' } : and(real);
};
const or = (of: Matcher[]): Matcher => (of.length === 1 ? (of[0] as Matcher) : { type: 'or', of });
const specOf = (doc: PolicyDocument): Obj => (isObject(doc.body.spec) ? doc.body.spec : {});

interface Context {
  options: CompileOptions;
  env: PeerEnv;
  warn: Warn;
  /** Each NetworkPolicy's rules, lowered once for the enforced and the staged walk (so each warning is reported once). */
  lowered: Map<PolicyDocument, TierRule[]>;
}

function unresolvedPorts(ctx: Context, doc: PolicyDocument): UnresolvedPort {
  return (name, fieldPath) => ctx.warn(doc, Code.K8S_PORT_NAME_UNRESOLVED,
    `named port ${JSON.stringify(name)} is not one of the workload's ports (--port-names); it matches nothing here, as on a pod without that port`, fieldPath);
}

// ---------------------------------------------------------------------------------------------------
// NetworkPolicy tier

/** policyTypes as the API server defaults them: Ingress always, Egress when there are egress rules. */
function policyTypes(spec: Obj): string[] {
  if (Array.isArray(spec.policyTypes) && spec.policyTypes.length > 0) return spec.policyTypes.map(String);
  return present(spec.egress) ? ['Ingress', 'Egress'] : ['Ingress'];
}

function ipBlock(block: Obj): Matcher {
  const inside: Matcher = { type: 'source.ip', cidrs: [String(block.cidr)] };
  const except = Array.isArray(block.except) ? block.except.map(String) : [];
  return except.length ? and([inside, { type: 'not', of: { type: 'source.ip', cidrs: except } }]) : inside;
}

function networkPolicyPeer(ctx: Context, namespace: string, peer: Obj): Matcher {
  if (isObject(peer.ipBlock)) return ipBlock(peer.ipBlock);
  if (present(peer.namespaceSelector)) return podPeer(ctx.env, { selector: peer.namespaceSelector }, peer.podSelector ?? undefined, 'allow');
  return podPeer(ctx.env, { own: namespace }, peer.podSelector ?? undefined, 'allow');
}

function networkPolicyRules(ctx: Context, doc: PolicyDocument, ref: PolicyRef): TierRule[] {
  const known = ctx.lowered.get(doc);
  if (known !== undefined) return known;
  const spec = specOf(doc);
  // A staged policy's rules say so in their ids, as Calico names staged policies `staged:<name>`.
  const name = doc.kind === STAGED_NETWORK_POLICY ? `staged:${ref.name}` : ref.name;
  const rules = objects(spec.ingress).map((rule, i): TierRule => {
    const from = objects(rule.from);
    // An empty or missing `from` admits every source (pods and addresses alike).
    const peers: Matcher = from.length === 0 ? { type: 'any' } : or(from.map((p) => networkPolicyPeer(ctx, ref.namespace, p)));
    const ports = networkPolicyPorts(rule.ports, `spec.ingress[${i}].ports`, ctx.options.linkerd.portNames, unresolvedPorts(ctx, doc));
    return {
      id: `tier[NetworkPolicy]-ns[${ref.namespace}]-policy[${name}]-ingress[${i}]`,
      policy: ref, action: 'allow', match: allOf([peers, ports]),
      reason: 'networkpolicy_allowed', namedAs: 'rule',
    };
  });
  ctx.lowered.set(doc, rules);
  return rules;
}

/** Whether a NetworkPolicy (or its staged form) selects the workload for ingress. */
function selectsWorkload(options: CompileOptions, doc: PolicyDocument): boolean {
  const { workload } = options;
  return (doc.metadata.namespace ?? 'default') === workload.namespace
    && selectorMatches(specOf(doc).podSelector ?? undefined, workload.labels)
    && policyTypes(specOf(doc)).includes('Ingress');
}

function networkPolicyTier(ctx: Context, docs: PolicyDocument[], applied: Set<PolicyDocument>): PolicyTier | null {
  const { workload } = ctx.options;
  const selecting = docs
    .filter((d) => selectsWorkload(ctx.options, d))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  if (selecting.length === 0) return null;
  const rules: TierRule[] = [];
  for (const doc of selecting) {
    applied.add(doc);
    const ref: PolicyRef = { dialect: DIALECT, kind: doc.kind, namespace: workload.namespace, name: doc.metadata.name };
    rules.push(...networkPolicyRules(ctx, doc, ref));
  }
  const first = selecting[0] as PolicyDocument;
  // Selected for ingress = isolated: whatever no rule admits is refused, and Baseline is never consulted.
  const isolated: TierDefault = {
    verdict: 'deny', reason: 'networkpolicy_isolated',
    policy: { dialect: DIALECT, kind: first.kind, namespace: workload.namespace, name: first.metadata.name },
  };
  return tier('networkpolicy', rules, isolated);
}

// ---------------------------------------------------------------------------------------------------
// Admin and Baseline tiers

type TierName = 'Admin' | 'Baseline';

interface ClusterPolicy {
  doc: PolicyDocument;
  tier: TierName;
  /** BaselineAdminNetworkPolicy has no priority: it sorts after every Baseline ClusterNetworkPolicy. */
  priority: number;
  /** AdminNetworkPolicy / BaselineAdminNetworkPolicy: `ports`, and v1alpha1 spelling of actions. */
  v1alpha1: boolean;
}

function clusterPolicy(doc: PolicyDocument): ClusterPolicy {
  const spec = specOf(doc);
  switch (doc.kind) {
    case 'AdminNetworkPolicy': return { doc, tier: 'Admin', priority: spec.priority as number, v1alpha1: true };
    case 'BaselineAdminNetworkPolicy': return { doc, tier: 'Baseline', priority: Number.POSITIVE_INFINITY, v1alpha1: true };
    default: return { doc, tier: spec.tier === 'Baseline' ? 'Baseline' : 'Admin', priority: spec.priority as number, v1alpha1: false };
  }
}

function subjectSelects(ctx: Context, subject: JsonValue | undefined, nsLabels: Record<string, string>): boolean {
  if (!isObject(subject)) return false;
  if (present(subject.namespaces)) return selectorMatches(subject.namespaces, nsLabels);
  if (isObject(subject.pods)) {
    return selectorMatches(subject.pods.namespaceSelector ?? undefined, nsLabels) && selectorMatches(subject.pods.podSelector ?? undefined, ctx.options.workload.labels);
  }
  return false;
}

function subjectNamespaceKeys(subject: JsonValue | undefined): string[] {
  if (!isObject(subject)) return [];
  if (present(subject.namespaces)) return labelKeysBeyondName(subject.namespaces);
  return isObject(subject.pods) ? labelKeysBeyondName(subject.pods.namespaceSelector) : [];
}

/** Where a ClusterNetworkPolicy peer's pods live and which pods they are; null for a peer with no field this version knows. */
function clusterPeerScope(peer: Obj): { scope: NamespaceScope; pods: JsonValue | undefined } | null {
  if (present(peer.namespaces)) return { scope: { selector: peer.namespaces }, pods: undefined };
  if (isObject(peer.pods)) return { scope: { selector: peer.pods.namespaceSelector ?? undefined }, pods: peer.pods.podSelector ?? undefined };
  return null;
}

const ACTIONS: Record<string, { action: RuleAction; verb: string }> = {
  Accept: { action: 'allow', verb: 'accepted' },
  Allow: { action: 'allow', verb: 'accepted' },
  Deny: { action: 'deny', verb: 'denied' },
  Pass: { action: 'pass', verb: 'passed' },
};

function clusterRules(ctx: Context, p: ClusterPolicy): TierRule[] {
  const { doc } = p;
  const ref: PolicyRef = { dialect: DIALECT, kind: doc.kind, namespace: '', name: doc.metadata.name };
  const spec = specOf(doc);
  return objects(spec.ingress).map((rule, i): TierRule => {
    const named = typeof rule.name === 'string' && rule.name !== '' ? `:${rule.name}` : '';
    const id = `tier[${p.tier}]-policy[${doc.metadata.name}]-ingress[${i}${named}]`;
    const { action, verb } = ACTIONS[String(rule.action)] ?? { action: 'deny', verb: 'denied' };
    // Pass has no safe direction for an identity whose pods disagree; it is read like Accept (every pod must match).
    const use: PeerUse = action === 'deny' ? 'deny' : 'allow';
    const scopes = objects(rule.from).map(clusterPeerScope);
    const peers = scopes.map((p) => (p === null ? null : podPeer(ctx.env, p.scope, p.pods, use)));
    if (action === 'pass') {
      scopes.forEach((p, j) => {
        const mixed = p === null ? [] : mixedIdentities(ctx.env, p.scope, p.pods);
        if (mixed.length > 0) {
          ctx.warn(doc, Code.K8S_HETEROGENEOUS_PEER,
            `the pods of ${mixed.join(', ')} differ: this Pass peer selects some of them, and the certificate does not say which pod calls; Portcullis passes only identities all of whose pods match`,
            `spec.ingress[${i}].from[${j}]`);
        }
      });
    }
    if (peers.some((m) => m === null)) {
      // The API's fail-closed rule for a peer from a newer CRD: Accept matches nothing, Deny and Pass deny everything.
      return action === 'allow'
        ? { id, policy: ref, action, match: { type: 'none' }, reason: `${p.tier.toLowerCase()}_${verb}`, namedAs: 'rule' }
        : { id, policy: ref, action: 'deny', match: { type: 'any' }, reason: 'peer_fail_closed', namedAs: 'rule' };
    }
    const path = `spec.ingress[${i}]`;
    const ports = p.v1alpha1
      ? adminPolicyPorts(rule.ports, `${path}.ports`, ctx.options.linkerd.portNames, unresolvedPorts(ctx, doc))
      : clusterPolicyProtocols(rule.protocols, `${path}.protocols`, ctx.options.linkerd.portNames, unresolvedPorts(ctx, doc));
    const match = allOf([or(peers as Matcher[]), ports]);
    return { id, policy: ref, action, match, reason: `${p.tier.toLowerCase()}_${verb}`, namedAs: 'rule' };
  });
}

function clusterTier(ctx: Context, name: TierName, policies: ClusterPolicy[]): PolicyTier | null {
  const selected = policies.filter((p) => p.tier === name)
    .sort((a, b) => a.priority - b.priority || (a.doc.metadata.name < b.doc.metadata.name ? -1 : 1));
  if (selected.length === 0) return null;
  selected.forEach((p, i) => {
    const prev = selected[i - 1];
    if (prev && prev.priority === p.priority) {
      ctx.warn(p.doc, Code.K8S_PRIORITY_TIE,
        `${p.doc.kind} ${p.doc.metadata.name} has the same priority (${p.priority}) as ${prev.doc.kind} ${prev.doc.metadata.name} in the ${name} tier; the API leaves their order undefined, Portcullis checks them by name`,
        'spec.priority');
    }
  });
  const rules = selected.flatMap((p) => clusterRules(ctx, p));
  return tier(name.toLowerCase(), rules, { verdict: 'pass', reason: 'pass', policy: null });
}

// ---------------------------------------------------------------------------------------------------

function scope(rules: TierRule[], otherwise: TierDefault): TierScope {
  return { ref: null, routes: null, rules, otherwise, shadow: null, rateLimit: null };
}

function tier(name: string, rules: TierRule[], otherwise: TierDefault): PolicyTier {
  // Network policies are L3/L4: they judge every request and connection alike.
  return { dialect: DIALECT, name, group: DIALECT, protocols: ['http', 'grpc', 'tcp'], ports: {}, anyPort: scope(rules, otherwise) };
}

export function lowerKubernetes(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput } {
  const diagnostics: Diagnostic[] = [];
  const warn: Warn = (doc, code, message, fieldPath, severity = 'warning') =>
    diagnostics.push({ code, severity, message, origin: doc.locate(fieldPath), fieldPath });
  const ctx: Context = { options, env: peerEnv(options), warn, lowered: new Map() };
  const applied = new Set<PolicyDocument>();
  const nsLabels = workloadNamespaceLabels(options);
  const namespaceLabelsConfigured = options.workload.namespaceLabels !== undefined;

  const cluster: ClusterPolicy[] = [];
  for (const doc of docs) {
    if (doc.kind === 'NetworkPolicy' || doc.kind === STAGED_NETWORK_POLICY) continue;
    const spec = specOf(doc);
    const keys = subjectNamespaceKeys(spec.subject);
    if (keys.length > 0 && !namespaceLabelsConfigured) {
      warn(doc, Code.K8S_NAMESPACE_LABELS_UNKNOWN,
        `the subject reads namespace label(s) ${keys.join(', ')}, but the workload's namespace labels are not configured (--namespace-labels); only ${'kubernetes.io/metadata.name'} is known`,
        'spec.subject', 'info');
    }
    // A policy with no ingress rules does not affect inbound traffic.
    if (objects(spec.ingress).length === 0 || !subjectSelects(ctx, spec.subject, nsLabels)) continue;
    applied.add(doc);
    cluster.push(clusterPolicy(doc));
  }

  const admin = clusterTier(ctx, 'Admin', cluster);
  const baseline = clusterTier(ctx, 'Baseline', cluster);
  const tiersWith = (networkPolicies: PolicyDocument[]): PolicyTier[] => {
    const tiers = [admin, networkPolicyTier(ctx, networkPolicies, applied), baseline].filter((t): t is PolicyTier => t !== null);
    // Nothing decided in any tier (no rule matched, or a Pass out of the last one): Kubernetes' default,
    // every pod may talk to every pod. A tier of its own, so that a Pass ends here and names the dialect.
    if (tiers.length > 0) tiers.push(tier('default', [], { verdict: 'allow', reason: 'kubernetes_default_allow', policy: null }));
    return tiers;
  };
  const enforced = docs.filter((d) => d.kind === 'NetworkPolicy');
  const tiers = tiersWith(enforced);
  const staged = docs.filter((d) => d.kind === STAGED_NETWORK_POLICY);
  if (staged.length === 0) return { diagnostics, output: { tiers, applied } };

  // Calico's StagedKubernetesNetworkPolicy commits to the NetworkPolicy of its namespace and name: Set replaces or
  // adds it, Delete removes it (stagedkubernetesnetworkpolicy.go ConvertStagedKubernetesPolicyToK8SEnforced).
  const key = (d: PolicyDocument) => `${d.metadata.namespace ?? 'default'}\0${d.metadata.name}`;
  const committed = new Map(enforced.map((d) => [key(d), d]));
  let previewed = false;
  for (const doc of staged) {
    const replaced = committed.get(key(doc));
    if (replaced !== undefined && replaced.kind === 'NetworkPolicy' && selectsWorkload(options, replaced)) previewed = true;
    if (specOf(doc).stagedAction === 'Delete') { committed.delete(key(doc)); continue; }
    committed.set(key(doc), doc);
    if (selectsWorkload(options, doc)) previewed = true;
  }
  if (!previewed) return { diagnostics, output: { tiers, applied } };
  // A tier that always passes, first in the group: its shadow result is the committed walk's decision.
  const staging = tier('staged', [], { verdict: 'pass', reason: 'kubernetes_staged_preview', policy: null });
  staging.anyPort.shadow = walkAsShadow(tiersWith([...committed.values()]), 'STAGED');
  return { diagnostics, output: { tiers: [staging, ...tiers], applied } };
}
