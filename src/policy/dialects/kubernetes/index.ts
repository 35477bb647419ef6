// Owns the Kubernetes dialect: networking.k8s.io/v1 NetworkPolicy and SIG-Network ClusterNetworkPolicy /
// AdminNetworkPolicy / BaselineAdminNetworkPolicy as one composition (cni-dialects.md §3, §4; docs/cni.md).

import type { PolicyDialect } from '../types.js';
import { DIALECT, lowerKubernetes } from './lower.js';
import { validateKubernetesDocument } from './validate.js';
import { STAGED_NETWORK_POLICY } from './schema.js';

const SIG_KINDS = new Set<string>(['ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy']);

export const kubernetesDialect: PolicyDialect = {
  dialect: DIALECT,
  accepts(apiVersion, kind) {
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
    // Claimed by group and kind so that an unsupported version is a loud error, never a skipped document.
    // `networking.x-k8s.io` never held a network-policy API; its look-alikes are refused rather than guessed at.
    if (group === 'networking.k8s.io') return kind === 'NetworkPolicy';
    // Calico's staged NetworkPolicy commits to a networking.k8s.io NetworkPolicy, which this dialect evaluates.
    if (apiVersion === 'projectcalico.org/v3') return kind === STAGED_NETWORK_POLICY;
    if (group === 'policy.networking.k8s.io' || group === 'networking.x-k8s.io') return SIG_KINDS.has(kind);
    return false;
  },
  validate: validateKubernetesDocument,
  lower: lowerKubernetes,
};
