// Conformance runner for the Kubernetes dialect (NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy,
// BaselineAdminNetworkPolicy). test/conformance/kubernetes/*.yaml have the Istio suite's shape (README.md there);
// every case cites the Kubernetes documentation, e2e test or network-policy-api conformance test it comes from.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompileOptions, PeerFacts } from '../../src/policy/ir.js';
import { buildRegistry } from '../../src/policy/peers.js';
import type { CheckRequest, DecideResult } from '../../src/check/decide.js';
import { assertSubset, compileSuite, decideCase, loadCaseFiles, registerConformanceSuites, type CaseFile as BaseCaseFile, type ConformanceSuite } from './runner.js';

interface WorkloadSpec {
  namespace?: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  namespaceLabels?: Record<string, string>;
}
interface OptionsSpec {
  trustDomain?: string;
  trustDomainAliases?: string[];
  portNames?: Record<string, number>;
}

/** A subset of CheckOutput, plus `dialect` (the deciding dialect, also when no policy is named). */
type Expect = Record<string, unknown>;

interface Case { name: string; source?: string; request?: CheckRequest; expect: Expect }
/** A registry entry as the peer registry file holds it; namespace and service account default from the SPIFFE ID. */
type PeerSpec = Partial<PeerFacts> & { spiffeId: string };

interface Suite extends ConformanceSuite<Case> {
  workload?: WorkloadSpec;
  options?: OptionsSpec;
  /** The peer registry (one entry per pod); absent = no registry. */
  peers?: PeerSpec[];
}
type CaseFile = BaseCaseFile<Suite, { workload?: WorkloadSpec; options?: OptionsSpec; peers?: PeerSpec[] }>;

function registryFacts(specs: readonly PeerSpec[]): PeerFacts[] {
  return specs.map((p) => {
    const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p.spiffeId);
    return {
      spiffeId: p.spiffeId, namespace: p.namespace ?? m?.[1] ?? '', serviceAccount: p.serviceAccount ?? m?.[2] ?? '',
      labels: p.labels ?? {}, namespaceLabels: p.namespaceLabels ?? {}, serviceAccountLabels: p.serviceAccountLabels ?? {}, ips: p.ips ?? [],
    };
  });
}

/** Plain HTTP from a cluster address to port 80 (the network-policy-api conformance servers listen on 80 and 8080). */
const BASE_REQUEST: CheckRequest = { method: 'GET', path: '/', host: 'server', headers: {}, peer: null, sourceIp: '10.0.0.1', port: 80, protocol: 'http' };

const loaded = loadCaseFiles<CaseFile>('kubernetes');

function compileOptions(file: CaseFile, suite: Suite): CompileOptions {
  const w = { ...file.defaults?.workload, ...suite.workload };
  const o = { ...file.defaults?.options, ...suite.options };
  const workload: CompileOptions['workload'] = {
    namespace: w.namespace ?? 'default', labels: w.labels ?? {}, annotations: {},
    serviceAccount: w.serviceAccount ?? 'default', trustDomain: o.trustDomain ?? 'cluster.local', trustDomainAliases: o.trustDomainAliases ?? [],
  };
  if (w.namespaceLabels) workload.namespaceLabels = w.namespaceLabels;
  const peers = suite.peers ?? file.defaults?.peers;
  return {
    workload,
    ...(peers ? { peers: buildRegistry(registryFacts(peers)) } : {}),
    rootNamespace: 'istio-system',
    pathNormalization: 'NONE',
    customProviders: [],
    linkerd: {
      defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {},
      portNames: o.portNames ?? {}, controlPlaneNamespace: 'linkerd',
    },
  };
}

function checkExpect(got: DecideResult, want: Expect, label: string): void {
  const { dialect, ...output } = want;
  try {
    assertSubset(got.output, output, 'output');
    if (dialect !== undefined) assert.equal(got.output.policy?.dialect ?? got.decision?.dialect ?? null, dialect, 'dialect');
  } catch (e) {
    (e as Error).message = `${(e as Error).message}\n${label}\n  got ${JSON.stringify(got.output)}`;
    throw e;
  }
}

const casesIn = (prefix: string): number => loaded
  .filter(({ name }) => name.startsWith(prefix))
  .reduce((n, { file }) => n + file.suites.reduce((m, s) => m + (s.cases?.length ?? 0) + (s.diagnostics ? 1 : 0), 0), 0);

test('the Kubernetes conformance suite has at least 40 NetworkPolicy cases', () => {
  const count = casesIn('networkpolicy-');
  assert.ok(count >= 40, `only ${count} NetworkPolicy cases`);
});

test('the Kubernetes conformance suite has at least 40 ClusterNetworkPolicy / AdminNetworkPolicy / BaselineAdminNetworkPolicy cases', () => {
  const count = casesIn('cluster-');
  assert.ok(count >= 40, `only ${count} cluster policy cases`);
});

registerConformanceSuites<CaseFile, Suite, Case>({
  loaded,
  labelPrefix: 'kubernetes ',
  compile: (name, file, suite) => {
    const compiled = compileSuite(name, suite, compileOptions(file, suite));
    return () => compiled;
  },
  runCase: async (compiled, file, _suite, c) => {
    const request: CheckRequest = { ...BASE_REQUEST, ...file.defaults?.request, ...c.request };
    checkExpect(await decideCase(compiled(), request), c.expect, c.name);
  },
});
