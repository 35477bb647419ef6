// Conformance runner for the Linkerd dialect. Each test/conformance/linkerd/*.yaml file has the Istio
// suite's shape (topic, defaults, suites of policies + cases; see README.md there) and every case cites
// the Linkerd documentation page or source file whose behaviour it pins down.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompileOptions, PathNormalization } from '../../src/policy/ir.js';
import { decideRequestDetailed, type CheckRequest, type DecideResult } from '../../src/check/decide.js';
import { LocalRateLimiter } from '../../src/policy/linkerd-rate-limit.js';
import { assertSubset, compileSuite, decisionSetup, loadCaseFiles, registerConformanceSuites, type CaseFile as BaseCaseFile, type ConformanceSuite } from './runner.js';

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
interface Suite extends ConformanceSuite<Case> {
  workload?: WorkloadSpec;
  options?: OptionsSpec;
}
type CaseFile = BaseCaseFile<Suite, { workload?: WorkloadSpec; options?: OptionsSpec }>;

/** Plain-HTTP request from a cluster address (never the 127.0.0.1 default: that is Linkerd's localhost). */
const BASE_REQUEST: CheckRequest = { method: 'GET', path: '/', host: 'api', headers: {}, peer: null, sourceIp: '10.0.0.1', port: 8080, protocol: 'http' };

const loaded = loadCaseFiles<CaseFile>('linkerd');

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

registerConformanceSuites<CaseFile, Suite, Case>({
  loaded,
  labelPrefix: 'linkerd ',
  // Compiled once per suite while the tests are registered; every test of the suite shares the result.
  compile: (name, file, suite) => {
    const compiled = compileSuite(name, suite, compileOptions(file, suite));
    return () => compiled;
  },
  runCase: async (compiled, file, _suite, c) => {
    const { snapshot, authenticator } = decisionSetup(compiled());
    const rateLimiter = new LocalRateLimiter();
    const steps: Step[] = c.steps ?? [{ request: c.request, expect: c.expect ?? {} }];
    for (const [i, step] of steps.entries()) {
      const request: CheckRequest = { ...BASE_REQUEST, ...file.defaults?.request, ...step.request };
      const got = await decideRequestDetailed(snapshot, request, { authenticator, rateLimiter });
      checkExpect(got, step.expect, `step ${i}`);
    }
  },
});
