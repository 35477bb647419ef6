// Conformance runner for the Calico dialect. Each test/conformance/calico/*.yaml file has the Istio suite's shape
// (topic, defaults, suites of policies + cases; see README.md there) plus a peer registry, and every case cites the
// Calico documentation page or source file whose behaviour it pins down.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CompileOptions, PathNormalization, PeerFacts } from '../../src/policy/ir.js';
import { buildRegistry } from '../../src/policy/peers.js';
import type { CheckRequest } from '../../src/check/decide.js';
import { assertSubset, compileSuite, decideCase, loadCaseFiles, registerConformanceSuites, type CaseFile as BaseCaseFile, type ConformanceSuite } from './runner.js';

interface WorkloadSpec {
  namespace?: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  namespaceLabels?: Record<string, string>;
  portNames?: Record<string, number>;
}
/** A registry entry; omitted fields default from the SPIFFE ID (`/ns/<ns>/sa/<sa>`) or to empty. */
type PeerSpec = Partial<PeerFacts> & { spiffeId: string };
interface OptionsSpec { pathNormalization?: PathNormalization; trustDomain?: string; trustDomainAliases?: string[] }

interface Case { name: string; source?: string; request?: CheckRequest; expect: Record<string, unknown> }
interface Suite extends ConformanceSuite<Case> {
  workload?: WorkloadSpec;
  options?: OptionsSpec;
  peers?: PeerSpec[];
}
type CaseFile = BaseCaseFile<Suite, { workload?: WorkloadSpec; options?: OptionsSpec; peers?: PeerSpec[] }>;

/** An HTTP request from `web` in the workload's own namespace to port 8080. */
const BASE_REQUEST: CheckRequest = {
  method: 'GET', path: '/', host: 'api', headers: {}, peer: 'spiffe://cluster.local/ns/shop/sa/web', sourceIp: '10.1.0.5', port: 8080, protocol: 'http',
};

const loaded = loadCaseFiles<CaseFile>('calico');

function peerFacts(p: PeerSpec): PeerFacts {
  const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p.spiffeId);
  return {
    spiffeId: p.spiffeId, namespace: p.namespace ?? m?.[1] ?? '', serviceAccount: p.serviceAccount ?? m?.[2] ?? '',
    labels: p.labels ?? {}, namespaceLabels: p.namespaceLabels ?? {}, serviceAccountLabels: p.serviceAccountLabels ?? {}, ips: p.ips ?? [],
  };
}

function compileOptions(file: CaseFile, suite: Suite): CompileOptions {
  const w = { ...file.defaults?.workload, ...suite.workload };
  const o = { ...file.defaults?.options, ...suite.options };
  const peers = suite.peers ?? file.defaults?.peers;
  return {
    workload: {
      namespace: w.namespace ?? 'shop', labels: w.labels ?? { app: 'api' }, annotations: {}, serviceAccount: w.serviceAccount ?? 'api',
      trustDomain: o.trustDomain ?? 'cluster.local', trustDomainAliases: o.trustDomainAliases ?? [], namespaceLabels: w.namespaceLabels ?? {},
    },
    rootNamespace: 'istio-system',
    pathNormalization: o.pathNormalization ?? 'BASE',
    customProviders: [],
    ...(peers ? { peers: buildRegistry(peers.map(peerFacts)) } : {}),
    linkerd: {
      defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {},
      portNames: w.portNames ?? {}, controlPlaneNamespace: 'linkerd',
    },
  };
}

test('the Calico conformance suite has at least 40 cases, each citing its source', () => {
  let count = 0;
  for (const { name, file } of loaded) {
    for (const s of file.suites) {
      for (const c of s.cases ?? []) {
        count++;
        assert.ok((c.source ?? s.source ?? '') !== '', `${name} / ${s.name} / ${c.name} cites no source`);
      }
    }
  }
  assert.ok(count >= 40, `only ${count} cases`);
});

registerConformanceSuites<CaseFile, Suite, Case>({
  loaded,
  labelPrefix: 'calico ',
  compile: (name, file, suite) => {
    const compiled = compileSuite(name, suite, compileOptions(file, suite));
    return () => compiled;
  },
  runCase: async (compiled, file, _suite, c) => {
    const request: CheckRequest = { ...BASE_REQUEST, ...file.defaults?.request, ...c.request };
    const got = await decideCase(compiled(), request);
    const { dialect, log, ...output } = c.expect;
    try {
      assertSubset(got.output, output, 'output');
      if (log !== undefined) assert.equal(got.output.log === true, log, 'log');
      if (dialect !== undefined) assert.equal(got.output.policy?.dialect ?? got.decision?.dialect ?? null, dialect, 'dialect');
    } catch (e) {
      (e as Error).message = `${(e as Error).message}\n  got ${JSON.stringify(got.output)}`;
      throw e;
    }
  },
});
