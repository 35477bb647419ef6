// Owns the Cilium dialect (cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy): validation and
// lowering to one tier. Spec: shared/spec/cni-dialects.md §1 (cilium/cilium pkg/policy, cilium/proxy).

import type { PolicyDialect } from '../types.js';
import { lowerCilium } from './lower.js';
import { KIND_CCNP, KIND_CNP } from './types.js';
import { validateCiliumDocument } from './validate.js';

export const ciliumDialect: PolicyDialect = {
  dialect: 'cilium',
  // Every version under the cilium.io group is claimed so that a wrong one is an error, not a silent skip.
  accepts: (apiVersion, kind) => apiVersion.startsWith('cilium.io/') && (kind === KIND_CNP || kind === KIND_CCNP),
  validate: validateCiliumDocument,
  lower: lowerCilium,
};
