// Owns PolicySnapshot: what compilePolicies produces for one policy revision and every consumer reads
// (evaluate, explain, the proxy, check, /policy). Immutable; everything derived from it is built in it.

import type { Diagnostic } from './diagnostics.js';
import type { CompileOptions, JwtProviderSpec, LoadedDocumentSummary, PolicyProgram } from './ir.js';
import type { CompiledProgram } from './program.js';

export interface PolicySnapshot {
  /** Content hash of the inputs + options; shown on /policy and in every decision event. */
  revision: string;
  options: CompileOptions;
  /** Every dialect's tiers, in dialect order; no tier = no policy (allow `no_policies`). */
  program: PolicyProgram;
  /** The program compiled once at compile time (matchers, indexes, route tables): what evaluate() walks. */
  compiled: CompiledProgram;
  /** RequestAuthentications selecting the workload, sorted by issuer. */
  jwtProviders: JwtProviderSpec[];
  /** Header names those providers write (outputPayloadToHeader, outputClaimToHeaders), lower-cased. */
  jwtOutputHeaders: ReadonlySet<string>;
  documents: LoadedDocumentSummary[];
  /** Warnings and infos (a snapshot never exists for a set with errors). */
  diagnostics: Diagnostic[];
}
