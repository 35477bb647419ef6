// Conformance runner for the Cilium dialect. Each test/conformance/cilium/*.yaml file has the Istio suite's
// shape (topic, defaults, suites of policies + cases; see README.md there) plus a peer registry, and every case
// cites the Cilium documentation page or cilium/cilium source file whose behaviour it pins down.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompileOptions, PathNormalization, PeerFacts } from '../../src/policy/ir.js';
import { buildRegistry } from '../../src/policy/peers.js';
import type { CheckRequest, DecideResult } from '../../src/check/decide.js';
import { assertSubset, compileSuite, decideCase, loadCaseFiles, registerConformanceSuites, type CaseFile as BaseCaseFile, type ConformanceSuite } from './runner.js';

interface WorkloadSpec { namespace?: string; labels?: Record<string, string>; serviceAccount?: string; namespaceLabels?: Record<string, string> }
interface OptionsSpec {
  pathNormalization?: PathNormalization;
  trustDomain?: string;
  portNames?: Record<string, number>;
  policyEnforcement?: 'default' | 'always' | 'never';
  /** The peer registry (PeerFacts; omitted maps default to {} and ips to []). */
  peers?: Partial<PeerFacts>[];
}

/** A subset of CheckOutput, plus `dialect` (the deciding dialect even when no policy is named). */
type Expect = Record<string, unknown>;

interface Case { name: string; source?: string; request?: CheckRequest; expect: Expect }
interface Suite extends ConformanceSuite<Case> { workload?: WorkloadSpec; options?: OptionsSpec }
type CaseFile = BaseCaseFile<Suite, { workload?: WorkloadSpec; options?: OptionsSpec }>;

/** Plain-HTTP request from an address outside the cluster to port 80. */
const BASE_REQUEST: CheckRequest = { method: 'GET', path: '/', host: 'api', headers: {}, peer: null, sourceIp: '203.0.113.10', port: 80, protocol: 'http' };

const loaded = loadCaseFiles<CaseFile>('cilium');

function compileOptions(file: CaseFile, suite: Suite): CompileOptions {
  const w = { ...file.defaults?.workload, ...suite.workload };
  const o = { ...file.defaults?.options, ...suite.options };
  const peers = (o.peers ?? []).map((p): PeerFacts => ({
    spiffeId: p.spiffeId ?? '', namespace: p.namespace ?? '', serviceAccount: p.serviceAccount ?? '',
    labels: p.labels ?? {}, namespaceLabels: p.namespaceLabels ?? {}, serviceAccountLabels: p.serviceAccountLabels ?? {}, ips: p.ips ?? [],
  }));
  return {
    workload: {
      namespace: w.namespace ?? 'default', labels: w.labels ?? {}, annotations: {}, serviceAccount: w.serviceAccount ?? 'default',
      trustDomain: o.trustDomain ?? 'cluster.local', trustDomainAliases: [], namespaceLabels: w.namespaceLabels ?? {},
    },
    rootNamespace: 'istio-system',
    pathNormalization: o.pathNormalization ?? 'NONE',
    customProviders: [],
    peers: buildRegistry(peers),
    cilium: { policyEnforcement: o.policyEnforcement ?? 'default' },
    linkerd: {
      defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {},
      portNames: o.portNames ?? {}, controlPlaneNamespace: 'linkerd',
    },
  };
}

function checkExpect(got: DecideResult, want: Expect): void {
  const { dialect, ...output } = want;
  try {
    assertSubset(got.output, output, 'output');
    if (dialect !== undefined) assert.equal(got.output.policy?.dialect ?? got.decision?.dialect ?? null, dialect, 'dialect');
  } catch (e) {
    (e as Error).message = `${(e as Error).message}\n  got ${JSON.stringify(got.output)}`;
    throw e;
  }
}

test('the Cilium conformance suite has at least 40 cases, each citing its source', () => {
  let count = 0;
  for (const { name, file } of loaded) {
    for (const s of file.suites) {
      for (const c of s.cases ?? []) {
        count++;
        assert.ok((c.source ?? s.source ?? '').length > 0, `${name} / ${s.name} / ${c.name}: no source`);
      }
    }
  }
  assert.ok(count >= 40, `only ${count} cases`);
});

registerConformanceSuites<CaseFile, Suite, Case>({
  loaded,
  labelPrefix: 'cilium ',
  compile: (name, file, suite) => {
    const compiled = compileSuite(name, suite, compileOptions(file, suite));
    return () => compiled;
  },
  runCase: async (compiled, file, _suite, c) => {
    const request: CheckRequest = { ...BASE_REQUEST, ...file.defaults?.request, ...c.request };
    checkExpect(await decideCase(compiled(), request), c.expect);
  },
});
