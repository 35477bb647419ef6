// Owns the Calico dialect (projectcalico.org/v3 Tier, NetworkPolicy, GlobalNetworkPolicy): validation, selection of
// the workload, tiers and rules lowered to the IR. Spec: shared/spec/cni-dialects.md §2 (Calico docs, libcalico-go).

import type { PolicyDialect } from '../types.js';
import { lowerCalico } from './lower.js';
import { CALICO_API_VERSION, specSchemaFor } from './schema.js';
import { validateCalicoDocument } from './validate.js';

export const calicoDialect: PolicyDialect = {
  dialect: 'calico',
  // `NetworkPolicy` is also a networking.k8s.io kind: Calico's is recognised by its API group.
  accepts: (apiVersion, kind) => apiVersion === CALICO_API_VERSION && specSchemaFor(kind) !== undefined,
  validate: validateCalicoDocument,
  lower: lowerCalico,
};
