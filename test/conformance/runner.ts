// Shared machinery of every dialect's conformance suite: loads test/conformance/<dialect>/*.yaml,
// registers one test per diagnostics block and per request case, and checks diagnostics and decisions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from '../helpers/paths.js';
import { compilePolicies, type CompileResult } from '../../src/policy/compile.js';
import type { CompileOptions } from '../../src/policy/ir.js';
import { createCheckAuthenticator, decideRequestDetailed, type CheckRequest, type DecideResult } from '../../src/check/decide.js';
import type { PolicySnapshot } from '../../src/policy/snapshot.js';
import type { JwtAuthenticator } from '../../src/jwt/types.js';

export interface DiagnosticExpectation { code: string; fieldPath?: string; severity?: string; line?: number }

/** What every dialect's suite has; each dialect adds its own workload, options and case fields. */
export interface ConformanceSuite<Case> {
  name: string;
  source?: string;
  policies: string;
  /** Expected diagnostics (each must be present); with an error the set must not compile. */
  diagnostics?: DiagnosticExpectation[];
  cases?: Case[];
}

export interface ConformanceCase { name: string; source?: string }

export interface CaseFile<Suite, Defaults> {
  topic: string;
  defaults?: Defaults & { request?: CheckRequest };
  suites: Suite[];
}

export interface LoadedCaseFile<File> { name: string; file: File }

/** Every `*.yaml` of test/conformance/<dialect>, in file-name order. */
export function loadCaseFiles<File>(dialect: string): LoadedCaseFile<File>[] {
  const dir = join(repoRoot(), 'test', 'conformance', dialect);
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  return files.map((name) => ({ name, file: parseYaml(readFileSync(join(dir, name), 'utf8')) as File }));
}

/** Compiles a suite's policies as one file named after the case file and the suite. */
export function compileSuite(name: string, suite: { name: string; policies?: string }, options: CompileOptions): CompileResult {
  return compilePolicies([{ file: `${name}#${suite.name}`, text: suite.policies ?? '' }], options);
}

/**
 * What a decision suite decides with: its snapshot (the suite's policies must compile) and `check`'s JWT
 * authenticator on a clock frozen at 0, as `portcullis check` builds them.
 */
export function decisionSetup(result: CompileResult): { snapshot: PolicySnapshot; authenticator: JwtAuthenticator } {
  const snapshot = result.snapshot;
  assert.ok(snapshot, `policies of a decision suite must compile: ${JSON.stringify(result.diagnostics.map((d) => `${d.code} ${d.fieldPath}: ${d.message}`))}`);
  return { snapshot, authenticator: createCheckAuthenticator(snapshot, { now: () => 0 }) };
}

/** Decides one request of a suite the way `portcullis check` does. */
export function decideCase(result: CompileResult, request: CheckRequest): Promise<DecideResult> {
  const { snapshot, authenticator } = decisionSetup(result);
  return decideRequestDetailed(snapshot, request, { authenticator });
}

/** Every key of `expected` must match in `actual` (recursively); other keys of `actual` are ignored. */
export function assertSubset(actual: unknown, expected: unknown, path: string): void {
  if (expected === null || typeof expected !== 'object' || Array.isArray(expected)) {
    assert.deepEqual(actual ?? null, expected, `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    return;
  }
  assert.ok(actual !== null && typeof actual === 'object', `${path}: expected an object ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  for (const [k, v] of Object.entries(expected)) assertSubset((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
}

/** Each expected diagnostic must be reported, and the set compiles exactly when none of them is an error. */
export function assertDiagnostics(result: CompileResult, expected: readonly DiagnosticExpectation[]): void {
  const got = result.diagnostics.map((d) => ({ code: d.code, fieldPath: d.fieldPath, severity: d.severity, line: d.origin.line }));
  for (const want of expected) {
    const hit = got.find((g) => g.code === want.code
      && (want.fieldPath === undefined || g.fieldPath === want.fieldPath)
      && (want.severity === undefined || g.severity === want.severity)
      && (want.line === undefined || g.line === want.line));
    assert.ok(hit, `missing ${JSON.stringify(want)}; got ${JSON.stringify(got)}`);
  }
  const wantsError = expected.some((d) => (d.severity ?? 'error') === 'error');
  assert.equal(result.snapshot === undefined, wantsError, wantsError ? 'a set with errors must not compile' : `unexpected errors: ${JSON.stringify(got)}`);
}

export interface ConformanceRunner<File extends CaseFile<Suite, unknown>, Suite extends ConformanceSuite<Case>, Case extends ConformanceCase> {
  loaded: readonly LoadedCaseFile<File>[];
  /** Prefix of every test name before `<topic> / <suite>`. */
  labelPrefix: string;
  /**
   * Called once per suite while tests are registered; the returned function gives the compiled set
   * to the suite's tests (a dialect decides whether it compiles once or per test).
   */
  compile: (name: string, file: File, suite: Suite) => () => CompileResult;
  /** Decides a case's request(s) and checks its expectations. */
  runCase: (compiled: () => CompileResult, file: File, suite: Suite, c: Case) => Promise<void>;
}

/** Registers a test per diagnostics block and per case, named `<prefix><topic> / <suite>: <case> [<source>]`. */
export function registerConformanceSuites<File extends CaseFile<Suite, unknown>, Suite extends ConformanceSuite<Case>, Case extends ConformanceCase>(
  runner: ConformanceRunner<File, Suite, Case>,
): void {
  for (const { name, file } of runner.loaded) {
    for (const suite of file.suites) {
      const label = `${runner.labelPrefix}${file.topic} / ${suite.name}`;
      const compiled = runner.compile(name, file, suite);

      if (suite.diagnostics) {
        test(`${label}: diagnostics [${suite.source ?? ''}]`, () => {
          assertDiagnostics(compiled(), suite.diagnostics ?? []);
        });
      }

      for (const c of suite.cases ?? []) {
        test(`${label}: ${c.name} [${c.source ?? suite.source ?? ''}]`, () => runner.runCase(compiled, file, suite, c));
      }
    }
  }
}
