// Owns the Istio dialect (security.istio.io AuthorizationPolicy, RequestAuthentication): validation as
// istiod does it, scope selection, and lowering to the IR. Spec: ../shared/spec/istio.md.
import type { PolicyDialect } from '../types.js';
import { lowerIstio } from './lower.js';
import { ISTIO_GROUP, validateIstioDocument } from './validate.js';

export const istioDialect: PolicyDialect = {
  dialect: 'istio',
  // Every kind of the security.istio.io group is claimed so that a misspelt kind or an unserved version is
  // an error, not a silently skipped policy; validate() accepts only the kinds and versions istiod serves.
  accepts: (apiVersion) => apiVersion.startsWith(ISTIO_GROUP),
  validate: validateIstioDocument,
  lower: lowerIstio,
};
