// Owns the contract every policy dialect implements: validate one document, then lower the valid set
// for one workload into the shared IR. compile.ts runs dialects; dialects never see each other.

import type { Diagnostic } from '../diagnostics.js';
import type { PolicyDocument } from '../documents-types.js';
import type { CompileOptions, Dialect, IstioProgram, JwtProviderSpec, LinkerdProgram } from '../ir.js';

export interface DialectOutput {
  istio?: IstioProgram;
  linkerd?: LinkerdProgram;
  jwtProviders?: JwtProviderSpec[];
  /** Documents that select the workload (for LoadedDocumentSummary.applies). */
  applied: Set<PolicyDocument>;
}

export interface DialectCompiler {
  readonly dialect: Dialect;
  /** True when this dialect parses documents of this apiVersion and kind. */
  accepts(apiVersion: string, kind: string): boolean;
  /** One document: schema (unknown fields are errors) and istiod/webhook-equivalent rules. */
  validate(doc: PolicyDocument): Diagnostic[];
  /**
   * The whole set of this dialect's documents (all valid): cross-document checks (references), scope
   * selection for `options.workload`, lowering. Only warnings/infos may be returned here; a broken
   * reference never widens access.
   */
  lower(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput };
}
