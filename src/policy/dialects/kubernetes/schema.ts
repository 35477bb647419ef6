// Owns the structural schemas of networking.k8s.io/v1 NetworkPolicy and the SIG-Network policy CRDs
// (ClusterNetworkPolicy v1alpha2/v1beta1, AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1), in the one schema language.

import { labelSelector, s, type Shape, type ShapeCodes } from '../../schema.js';
import { Code } from '../../../codes.js';

export { isObject } from '../../schema.js';

export const kubernetesShapeCodes: ShapeCodes = {
  unknown_field: Code.K8S_UNKNOWN_FIELD,
  wrong_type: Code.K8S_WRONG_TYPE,
  null_field: Code.K8S_WRONG_TYPE,
  bad_value: Code.K8S_BAD_VALUE,
  missing_field: Code.K8S_MISSING_FIELD,
  too_few: Code.K8S_TOO_FEW,
  too_many: Code.K8S_TOO_MANY,
};

const port = s.int({ min: 1, max: 65535 });
const protocol = s.oneOf('TCP', 'UDP', 'SCTP');

// --- networking.k8s.io/v1 NetworkPolicy (k8s.io/api networking/v1 types.go)

const npPeer = s.object({ podSelector: labelSelector, namespaceSelector: labelSelector, ipBlock: s.object({ cidr: s.string, except: s.strings }, ['cidr']) });
const npPort = s.object({ protocol, port: s.intOrString, endPort: port });

const networkPolicyFields = {
  podSelector: labelSelector,
  policyTypes: s.list(s.oneOf('Ingress', 'Egress'), { max: 2 }),
  ingress: s.list(s.object({ from: s.list(npPeer), ports: s.list(npPort) })),
  egress: s.list(s.object({ to: s.list(npPeer), ports: s.list(npPort) })),
};
const networkPolicySpec = s.object(networkPolicyFields);
/** Calico's staged form of a NetworkPolicy (projectcalico.org/v3 stagedkubernetesnetworkpolicy.go): the same spec plus stagedAction. */
const stagedNetworkPolicySpec = s.object({ ...networkPolicyFields, stagedAction: s.oneOf('Set', 'Delete', 'Learn', 'Ignore') });

// --- policy.networking.k8s.io ClusterNetworkPolicy v1alpha2 / v1beta1 (apis/v1alpha2 clusternetworkpolicy_types.go)

function namespacedPod(namespaceSelectorRequired: boolean): Shape {
  return s.object({ namespaceSelector: labelSelector, podSelector: labelSelector }, namespaceSelectorRequired ? ['namespaceSelector', 'podSelector'] : ['podSelector']);
}

/**
 * The ingress peer fields this version knows. A peer is checked against it field by field (validate.ts):
 * a peer with no field this version knows comes from a newer CRD, and the rule fails closed instead.
 */
export function ingressPeerShape(v1alpha1: boolean): Shape {
  return s.object({ namespaces: labelSelector, pods: namespacedPod(v1alpha1) });
}

const cnpPort = s.object({ number: port, range: s.object({ start: port, end: port }, ['start', 'end']) });
const cnpProtocol = s.object({
  tcp: s.object({ destinationPort: cnpPort }),
  udp: s.object({ destinationPort: cnpPort }),
  sctp: s.object({ destinationPort: cnpPort }),
  destinationNamedPort: s.string,
});
// `Allow` is the AdminNetworkPolicy spelling; read as Accept with a warning (validate.ts).
const cnpAction = s.oneOf('Accept', 'Deny', 'Pass', 'Allow');
// Peers are `any` here: validate.ts checks the fields it knows and fails closed on the rest.
const peers = (max: number): Shape => s.list(s.any, { min: 1, max });

const clusterNetworkPolicySpec = s.object({
  tier: s.oneOf('Admin', 'Baseline'),
  priority: s.int({ min: 0, max: 1000 }),
  subject: s.object({ namespaces: labelSelector, pods: namespacedPod(false) }),
  ingress: s.list(s.object({ name: s.string, action: cnpAction, from: peers(25), protocols: s.list(cnpProtocol, { min: 1, max: 25 }) }, ['action', 'from']), { max: 25 }),
  egress: s.list(s.object({ name: s.string, action: cnpAction, to: peers(25), protocols: s.list(cnpProtocol, { min: 1, max: 25 }) }, ['action', 'to']), { max: 25 }),
}, ['tier', 'priority', 'subject']);

// --- policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy (apis/v1alpha1)

const anpPort = s.object({
  portNumber: s.object({ protocol, port }, ['port']),
  namedPort: s.string,
  portRange: s.object({ protocol, start: port, end: port }, ['start', 'end']),
});

function anpRules(...actions: string[]): Record<string, Shape> {
  const action = s.oneOf(...actions);
  return {
    ingress: s.list(s.object({ name: s.string, action, from: peers(100), ports: s.list(anpPort, { min: 1, max: 100 }) }, ['action', 'from']), { max: 100 }),
    egress: s.list(s.object({ name: s.string, action, to: peers(100), ports: s.list(anpPort, { min: 1, max: 100 }) }, ['action', 'to']), { max: 100 }),
  };
}
const anpSubject = s.object({ namespaces: labelSelector, pods: namespacedPod(true) });
const adminNetworkPolicySpec = s.object({ priority: s.int({ min: 0, max: 1000 }), subject: anpSubject, ...anpRules('Allow', 'Deny', 'Pass') }, ['priority', 'subject']);
const baselineAdminNetworkPolicySpec = s.object({ subject: anpSubject, ...anpRules('Allow', 'Deny') }, ['subject']);

export type KubernetesKind = 'NetworkPolicy' | 'StagedKubernetesNetworkPolicy' | 'ClusterNetworkPolicy' | 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy';

/** A proposed NetworkPolicy: previewed in the decision's shadow result, never enforced (docs/cni.md). */
export const STAGED_NETWORK_POLICY = 'StagedKubernetesNetworkPolicy';

const SHAPES: Record<string, Partial<Record<KubernetesKind, Shape>>> = {
  'networking.k8s.io/v1': { NetworkPolicy: networkPolicySpec },
  'projectcalico.org/v3': { StagedKubernetesNetworkPolicy: stagedNetworkPolicySpec },
  'policy.networking.k8s.io/v1alpha2': { ClusterNetworkPolicy: clusterNetworkPolicySpec },
  'policy.networking.k8s.io/v1beta1': { ClusterNetworkPolicy: clusterNetworkPolicySpec },
  'policy.networking.k8s.io/v1alpha1': { AdminNetworkPolicy: adminNetworkPolicySpec, BaselineAdminNetworkPolicy: baselineAdminNetworkPolicySpec },
};

export function specShapeFor(apiVersion: string, kind: string): Shape | undefined {
  return SHAPES[apiVersion]?.[kind as KubernetesKind];
}

/** The supported apiVersions of a kind, for the "unsupported version" message. */
export function versionsOf(kind: string): string[] {
  return Object.entries(SHAPES).filter(([, kinds]) => kind in kinds).map(([v]) => v);
}
