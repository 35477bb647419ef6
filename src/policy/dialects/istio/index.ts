// Owns the Istio dialect (security.istio.io AuthorizationPolicy, RequestAuthentication): validation as
// istiod does it, scope selection, and lowering to the IR. Spec: ../shared/spec/istio.md.
// PLACEHOLDER until the Istio dialect lands: accepts no documents.
import type { DialectCompiler } from '../types.js';

export const istioDialect: DialectCompiler = {
  dialect: 'istio',
  accepts: () => false,
  validate: () => [],
  lower: () => ({ diagnostics: [], output: { applied: new Set() } }),
};
