// Owns the Linkerd dialect (policy.linkerd.io + Gateway API routes): validation, references, default
// policies and lowering to the IR. Spec: ../shared/spec/linkerd.md.
// PLACEHOLDER until the Linkerd dialect lands: accepts no documents.
import type { DialectCompiler } from '../types.js';

export const linkerdDialect: DialectCompiler = {
  dialect: 'linkerd',
  accepts: () => false,
  validate: () => [],
  lower: () => ({ diagnostics: [], output: { applied: new Set() } }),
};
