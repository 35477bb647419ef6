// Conformance runner for the Linkerd dialect. Each test/conformance/linkerd/*.yaml file has the Istio
// suite's shape (topic, defaults, suites of policies + cases; see README.md there) and every case cites
// the Linkerd documentation page or source file whose behaviour it pins down.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { compilePolicies } from '../../src/policy/compile.js';
import type { CompileOptions, PathNormalization } from '../../src/policy/ir.js';
import { createCheckAuthenticator, decideRequestDetailed, type CheckRequest, type DecideResult } from '../../src/check/decide.js';
import { LocalRateLimiter } from '../../src/policy/linkerd-rate-limit.js';
import { repoRoot } from '../helpers/paths.js';

interface WorkloadSpec { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; serviceAccount?: string }
interface OptionsSpec {
  pathNormalization?: PathNormalization;
  trustDomain?: string;
  defaultPolicy?: string;
  clusterNetworks?: string[];
  probeNetworks?: string[];
  probePaths?: Record<string, string[]>;
  portNames?: Record<string, number>;
  controlPlaneNamespace?: string;
}

/**
 * A subset of CheckOutput (nested objects too; null must be null), plus three Linkerd extensions:
 * `audit: true|false` (whether the decision is an audit would-deny), `dialect` (the deciding dialect
 * even when no policy is named) and `effects` (route filters and rate limit, matched as a subset).
 */
type Expect = Record<string, unknown>;

interface Step { request?: CheckRequest; expect: Expect }
interface Case {
  name: string;
  source?: string;
  request?: CheckRequest;
  expect?: Expect;
  /** Several requests through one rate limiter (`request.time` in ms drives it). */
  steps?: Step[];
}
interface DiagnosticExpectation { code: string; fieldPath?: string; severity?: string; line?: number }
interface Suite {
  name: string;
  source?: string;
  workload?: WorkloadSpec;
  options?: OptionsSpec;
  policies: string;
  /** Each must be reported; with an expected error the set must not compile. */
  diagnostics?: DiagnosticExpectation[];
  cases?: Case[];
}
interface CaseFile {
  topic: string;
  defaults?: { workload?: WorkloadSpec; options?: OptionsSpec; request?: CheckRequest };
  suites: Suite[];
}

/** Plain-HTTP request from a cluster address (never the 127.0.0.1 default: that is Linkerd's localhost). */
const BASE_REQUEST: CheckRequest = { method: 'GET', path: '/', host: 'api', headers: {}, peer: null, sourceIp: '10.0.0.1', port: 8080, protocol: 'http' };

const dir = join(repoRoot(), 'test', 'conformance', 'linkerd');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
const loaded = files.map((name) => ({ name, file: parse(readFileSync(join(dir, name), 'utf8')) as CaseFile }));

function compileOptions(file: CaseFile, suite: Suite): CompileOptions {
  const w = { ...file.defaults?.workload, ...suite.workload };
  const o = { ...file.defaults?.options, ...suite.options };
  const probePaths: Record<number, string[]> = {};
  for (const [port, paths] of Object.entries(o.probePaths ?? {})) probePaths[Number(port)] = paths;
  return {
    workload: {
      namespace: w.namespace ?? 'default', labels: w.labels ?? {}, annotations: w.annotations ?? {},
      serviceAccount: w.serviceAccount ?? 'default', trustDomain: o.trustDomain ?? 'cluster.local', trustDomainAliases: [],
    },
    rootNamespace: 'istio-system',
    pathNormalization: o.pathNormalization ?? 'NONE',
    customProviders: [],
    linkerd: {
      defaultPolicy: o.defaultPolicy ?? 'all-unauthenticated',
      clusterNetworks: o.clusterNetworks ?? ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16', 'fd00::/8'],
      probeNetworks: o.probeNetworks ?? ['0.0.0.0/0', '::/0'],
      probePaths,
      portNames: o.portNames ?? {},
      controlPlaneNamespace: o.controlPlaneNamespace ?? 'linkerd',
    },
  };
}

function assertSubset(actual: unknown, expected: unknown, path: string): void {
  if (expected === null || typeof expected !== 'object' || Array.isArray(expected)) {
    assert.deepEqual(actual ?? null, expected, `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    return;
  }
  assert.ok(actual !== null && typeof actual === 'object', `${path}: expected an object ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  for (const [k, v] of Object.entries(expected)) assertSubset((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
}

function checkExpect(got: DecideResult, want: Expect, label: string): void {
  const { audit, dialect, effects, ...output } = want;
  const shown = `${label}\n  got ${JSON.stringify({ ...got.output, effects: got.decision?.effects ?? null })}`;
  try {
    assertSubset(got.output, output, 'output');
    if (typeof audit === 'boolean') assert.equal(got.output.audit !== null, audit, 'audit would-deny');
    else if (audit !== undefined) assertSubset(got.output.audit, audit, 'output.audit');
    if (dialect !== undefined) assert.equal(got.output.policy?.dialect ?? got.decision?.dialect ?? null, dialect, 'dialect');
    if (effects !== undefined) assertSubset(got.decision?.effects ?? null, effects, 'effects');
  } catch (e) {
    (e as Error).message = `${(e as Error).message}\n${shown}`;
    throw e;
  }
}

test('the Linkerd conformance suite has at least 70 cases', () => {
  const count = loaded.reduce((n, { file }) => n + file.suites.reduce((m, s) => m + (s.cases?.length ?? 0), 0), 0);
  assert.ok(count >= 70, `only ${count} cases`);
});

for (const { name, file } of loaded) {
  for (const suite of file.suites) {
    const label = `linkerd ${file.topic} / ${suite.name}`;
    const compiled = compilePolicies([{ file: `${name}#${suite.name}`, text: suite.policies ?? '' }], compileOptions(file, suite));

    if (suite.diagnostics) {
      test(`${label}: diagnostics [${suite.source ?? ''}]`, () => {
        const got = compiled.diagnostics.map((d) => ({ code: d.code, fieldPath: d.fieldPath, severity: d.severity, line: d.origin.line }));
        for (const want of suite.diagnostics ?? []) {
          const hit = got.find((g) => g.code === want.code
            && (want.fieldPath === undefined || g.fieldPath === want.fieldPath)
            && (want.severity === undefined || g.severity === want.severity)
            && (want.line === undefined || g.line === want.line));
          assert.ok(hit, `missing ${JSON.stringify(want)}; got ${JSON.stringify(got)}`);
        }
        const wantsError = (suite.diagnostics ?? []).some((d) => (d.severity ?? 'error') === 'error');
        assert.equal(compiled.snapshot === undefined, wantsError, wantsError ? 'a set with errors must not compile' : `unexpected errors: ${JSON.stringify(got)}`);
      });
    }

    for (const c of suite.cases ?? []) {
      test(`${label}: ${c.name} [${c.source ?? suite.source ?? ''}]`, async () => {
        const snapshot = compiled.snapshot;
        assert.ok(snapshot, `policies of a decision suite must compile: ${JSON.stringify(compiled.diagnostics.map((d) => `${d.code} ${d.fieldPath}: ${d.message}`))}`);
        const authenticator = createCheckAuthenticator(snapshot, { now: () => 0 });
        const rateLimiter = new LocalRateLimiter();
        const steps: Step[] = c.steps ?? [{ request: c.request, expect: c.expect ?? {} }];
        for (const [i, step] of steps.entries()) {
          const request: CheckRequest = { ...BASE_REQUEST, ...file.defaults?.request, ...step.request };
          const got = await decideRequestDetailed(snapshot, request, { authenticator, rateLimiter });
          checkExpect(got, step.expect, `step ${i}`);
        }
      });
    }
  }
}
