// Owns the contract every policy dialect implements: validate one document, then lower the valid set for
// one workload into tiers of the one PolicyProgram. compile.ts runs dialects; dialects never see each other.

import type { Diagnostic } from '../diagnostics.js';
import type { PolicyDocument } from '../documents-types.js';
import type { CompileOptions, Dialect, JwtProviderSpec, PolicyTier } from '../ir.js';

export interface DialectOutput {
  /** This dialect's composition for the workload, as tiers walked in order; none = the dialect has no say. */
  tiers: PolicyTier[];
  jwtProviders?: JwtProviderSpec[];
  /** Documents that select the workload (for LoadedDocumentSummary.applies). */
  applied: Set<PolicyDocument>;
}

export interface PolicyDialect {
  readonly dialect: Dialect;
  /** True when this dialect parses documents of this apiVersion and kind (dispatch on both, never kind alone). */
  accepts(apiVersion: string, kind: string): boolean;
  /** One document: schema (unknown fields are errors) and the upstream admission rules. */
  validate(doc: PolicyDocument): Diagnostic[];
  /**
   * The whole set of this dialect's documents (all valid; possibly none, as options alone may make a
   * dialect govern): cross-document checks (references), scope selection for `options.workload`, lowering.
   * Only warnings/infos may be returned here; a broken reference never widens access.
   */
  lower(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput };
}
