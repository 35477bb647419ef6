// Owns the compile pipeline: ordered, named stages parse -> validate -> lower -> prepare -> freeze,
// producing one immutable PolicySnapshot (the PolicyProgram and its compiled form) for one workload, or diagnostics and no snapshot at all.

import { hasErrors, type Diagnostic } from './diagnostics.js';
import type { PolicyDocument, PolicySource } from './documents-types.js';
import { parsePolicySources } from './documents.js';
import { dialects } from './dialects/index.js';
import type { PolicyDialect } from './dialects/types.js';
import type { CompileOptions, JwtProviderSpec, LoadedDocumentSummary, PolicyProgram } from './ir.js';
import type { PolicySnapshot } from './snapshot.js';
import type { MatcherEnv } from './match/types.js';
import { compileProgram } from './program.js';
import { Code } from '../codes.js';

export interface StageTiming {
  stage: 'parse' | 'validate' | 'lower' | 'prepare' | 'freeze';
  ms: number;
}

export interface CompileResult {
  /** Undefined when any error was found: a set with errors is never half-applied. */
  snapshot: PolicySnapshot | undefined;
  diagnostics: Diagnostic[];
  timings: StageTiming[];
}

export interface CompileHooks {
  /** Injected clock for stage timings (the core never reads one itself). */
  clock?: () => number;
}

/** The full pipeline from YAML text. */
export function compilePolicies(sources: readonly PolicySource[], options: CompileOptions, hooks: CompileHooks = {}): CompileResult {
  const timings: StageTiming[] = [];
  const timed = <T>(stage: StageTiming['stage'], fn: () => T): T => {
    const t0 = hooks.clock?.();
    const out = fn();
    if (t0 !== undefined && hooks.clock) timings.push({ stage, ms: hooks.clock() - t0 });
    return out;
  };
  const parsed = timed('parse', () => parsePolicySources(sources));
  const result = compileDocuments(parsed.documents, options, timed, sourcesRevision(sources, options));
  return { snapshot: result.snapshot, diagnostics: [...parsed.diagnostics, ...result.diagnostics], timings };
}

type Timed = <T>(stage: StageTiming['stage'], fn: () => T) => T;

function compileDocuments(documents: PolicyDocument[], options: CompileOptions, timed: Timed, revision: string): { snapshot: PolicySnapshot | undefined; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const byDialect = new Map<PolicyDialect, PolicyDocument[]>();

  timed('validate', () => {
    for (const doc of documents) {
      const dialect = dialects.find((d) => d.accepts(doc.apiVersion, doc.kind));
      if (!dialect) {
        diagnostics.push({
          code: Code.UNKNOWN_KIND, severity: 'warning',
          message: `${doc.apiVersion} ${doc.kind} is not a policy kind Portcullis enforces; skipped`,
          origin: doc.origin, fieldPath: 'kind',
        });
        continue;
      }
      diagnostics.push(...dialect.validate(doc));
      const list = byDialect.get(dialect) ?? [];
      list.push(doc);
      byDialect.set(dialect, list);
    }
  });
  if (hasErrors(diagnostics)) return { snapshot: undefined, diagnostics };

  const lowered = timed('lower', () => {
    const applied = new Set<PolicyDocument>();
    const program: PolicyProgram = { tiers: [] };
    const jwtProviders: JwtProviderSpec[] = [];
    // Every dialect lowers, even with no document: a dialect may govern the workload from options alone
    // (an explicitly configured Linkerd default policy). Tiers follow the dialect list's order.
    for (const dialect of dialects) {
      const out = dialect.lower(byDialect.get(dialect) ?? [], options);
      diagnostics.push(...out.diagnostics);
      for (const d of out.output.applied) applied.add(d);
      program.tiers.push(...out.output.tiers);
      if (out.output.jwtProviders) jwtProviders.push(...out.output.jwtProviders);
    }
    const summaries = documents.map((doc): LoadedDocumentSummary => ({
      file: doc.origin.file, line: doc.origin.line, apiVersion: doc.apiVersion, kind: doc.kind,
      namespace: doc.metadata.namespace ?? '', name: doc.metadata.name, applies: applied.has(doc),
    }));
    return { program, jwtProviders, summaries };
  });
  if (hasErrors(diagnostics)) return { snapshot: undefined, diagnostics };
  const { program, jwtProviders, summaries } = lowered;
  const compiled = timed('prepare', () => compileProgram(program, matcherEnv(jwtProviders, options)));
  const snapshot: PolicySnapshot = {
    revision, options, program, compiled, jwtProviders, jwtOutputHeaders: jwtOutputHeaders(jwtProviders),
    documents: summaries, diagnostics: diagnostics.slice(),
  };
  // The IR is frozen whole, after compiling (closures built from unfrozen data stay on V8's fast paths);
  // the compiled program holds closures and indexes, frozen only at its top.
  timed('freeze', () => {
    for (const key of ['program', 'options', 'jwtProviders', 'documents', 'diagnostics'] as const) deepFreeze(snapshot[key]);
    Object.freeze(compiled);
    Object.freeze(snapshot);
  });
  return { snapshot, diagnostics };
}

/** Header names the RequestAuthentications write, lower-cased: the proxy strips client copies (PC-21). */
function jwtOutputHeaders(providers: readonly JwtProviderSpec[]): ReadonlySet<string> {
  const names = new Set<string>();
  for (const p of providers) {
    if (p.outputPayloadToHeader) names.add(p.outputPayloadToHeader.toLowerCase());
    for (const c of p.outputClaimToHeaders) names.add(c.header.toLowerCase());
  }
  return names;
}

/** What the matchers need from the whole set: claims RequestAuthentications split on spaces, the peer registry. */
function matcherEnv(providers: readonly JwtProviderSpec[], options: CompileOptions): MatcherEnv {
  const extra = new Set<string>();
  for (const p of providers) for (const c of p.spaceDelimitedClaims) extra.add(c);
  const env: MatcherEnv = { spaceDelimitedClaims: [...extra] };
  if (options.peers !== undefined) env.peers = options.peers;
  return env;
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  return value;
}

/** FNV-1a over the inputs and options: same files + same workload = same revision. */
function sourcesRevision(sources: readonly PolicySource[], options: CompileOptions): string {
  let h = 0x811c9dc5;
  const feed = (s: string) => {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  };
  for (const s of [...sources].sort((a, b) => (a.file < b.file ? -1 : 1))) { feed(s.file); feed('\0'); feed(s.text); feed('\0'); }
  // The peer registry is a Map: written as its entries so a registry change is a new revision.
  feed(JSON.stringify(options, (_key, value: unknown) => (value instanceof Map ? [...(value as Map<unknown, unknown>)] : value)));
  return h.toString(16).padStart(8, '0');
}
