// Owns the Linkerd dialect (policy.linkerd.io + Gateway API routes): validation, references, default
// policies and lowering to the IR. Spec: shared/spec/linkerd.md (linkerd2 policy-controller, webhook).

import type { PolicyDialect } from '../types.js';
import { lowerLinkerd } from './lower.js';
import { specShapeFor } from './schema.js';
import { validateLinkerdDocument } from './validate.js';

const LINKERD_KINDS = new Set(['Server', 'HTTPRoute', 'GRPCRoute', 'AuthorizationPolicy', 'MeshTLSAuthentication', 'NetworkAuthentication', 'ServerAuthorization', 'HTTPLocalRateLimitPolicy']);

export const linkerdDialect: PolicyDialect = {
  dialect: 'linkerd',
  accepts(apiVersion, kind) {
    if (apiVersion.startsWith('policy.linkerd.io/')) return LINKERD_KINDS.has(kind);
    // Gateway API routes take part only through parentRefs to a Server; accepted so that they are validated.
    return specShapeFor(apiVersion, kind) !== undefined;
  },
  validate: validateLinkerdDocument,
  lower: lowerLinkerd,
};
