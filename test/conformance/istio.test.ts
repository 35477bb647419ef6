// Istio conformance suite runner: every test/conformance/istio/*.yaml compiles its policies exactly as
// users apply them, then decides each request through the real check path. Format: test/conformance/istio/README.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import type { CompileOptions, PathNormalization } from '../../src/policy/ir.js';
import type { CheckRequest } from '../../src/check/decide.js';
import { mintToken, type TokenSpec } from '../fixtures/jwt/mint.js';
import { assertSubset, compileSuite, loadCaseFiles, registerConformanceSuites, type CaseFile as BaseCaseFile, type ConformanceSuite } from './runner.js';

/** The clock every case runs at (2026-09-21T...): tokens are minted and verified against it. */
const NOW = 1_790_000_000_000;

/** JWKS URIs used by the cases, mapped to the test key set (it stands in for Istio's sample keys). */
const JWKS_URIS = [
  'https://raw.githubusercontent.com/istio/istio/release-1.24/security/tools/jwt/samples/jwks.json',
  'https://example.com/.well-known/jwks.json',
];

interface WorkloadSpec { namespace?: string; labels?: Record<string, string>; serviceAccount?: string }
interface OptionsSpec { pathNormalization?: PathNormalization; trustDomain?: string; trustDomainAliases?: string[]; rootNamespace?: string; customProviders?: string[] }
interface TokenCase extends TokenSpec {
  /** A literal token instead of a minted one (malformed tokens). */
  raw?: string;
  /** Where to put it; default `authorization: Bearer <t>`. */
  header?: string;
  prefix?: string;
  param?: string;
}
interface RequestCase {
  name: string;
  source?: string;
  request?: CheckRequest;
  token?: TokenCase;
  expect: Record<string, unknown>;
}
interface Suite extends ConformanceSuite<RequestCase> {
  workload?: WorkloadSpec;
  options?: OptionsSpec;
}
type CaseFile = BaseCaseFile<Suite, { workload?: WorkloadSpec; options?: OptionsSpec }>;

type DecideModule = typeof import('../../src/check/decide.js');

const BASE_REQUEST: CheckRequest = {
  method: 'GET', path: '/', host: 'httpbin.foo:8000', headers: {},
  peer: 'spiffe://cluster.local/ns/foo/sa/sleep', sourceIp: '10.0.0.1', port: 8000, protocol: 'http',
};

function compileOptions(file: CaseFile, suite: Suite): CompileOptions {
  const w = { ...file.defaults?.workload, ...suite.workload };
  const o = { ...file.defaults?.options, ...suite.options };
  return {
    workload: {
      namespace: w.namespace ?? 'foo', labels: w.labels ?? { app: 'httpbin', version: 'v1' }, annotations: {},
      serviceAccount: w.serviceAccount ?? 'httpbin', trustDomain: o.trustDomain ?? 'cluster.local',
      trustDomainAliases: o.trustDomainAliases ?? [],
    },
    rootNamespace: o.rootNamespace ?? 'istio-system',
    pathNormalization: o.pathNormalization ?? 'BASE',
    customProviders: o.customProviders ?? [],
    linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
  };
}

async function buildRequest(file: CaseFile, c: RequestCase): Promise<CheckRequest> {
  const request: CheckRequest = { ...BASE_REQUEST, ...file.defaults?.request, ...c.request };
  const headers: Record<string, string | string[]> = { ...request.headers };
  if (c.token) {
    const token = c.token.raw ?? await mintToken(c.token, NOW);
    if (c.token.param) {
      const path = request.path ?? '/';
      request.path = `${path}${path.includes('?') ? '&' : '?'}${c.token.param}=${token}`;
    } else {
      headers[c.token.header ?? 'authorization'] = `${c.token.prefix ?? 'Bearer '}${token}`;
    }
  }
  request.headers = headers;
  return request;
}

let decideModule: Promise<DecideModule | Error> | undefined;
function loadDecide(): Promise<DecideModule | Error> {
  // Loaded at run time so this suite compiles before src/check/decide.ts exists.
  const specifier = '../../src/check/decide.js';
  decideModule ??= (import(specifier) as Promise<DecideModule>).catch((e: unknown) => e as Error);
  return decideModule;
}

const loaded = loadCaseFiles<CaseFile>('istio');
const jwksFiles = Object.fromEntries(JWKS_URIS.map((u) => [u, join(repoRoot(), 'test', 'fixtures', 'jwt', 'jwks.json')]));

test('the Istio conformance suite has at least 90 cases', () => {
  let count = 0;
  for (const { file } of loaded) {
    for (const s of file.suites) count += (s.cases?.length ?? 0) + (s.diagnostics ? 1 : 0);
  }
  assert.ok(count >= 90, `only ${count} cases`);
});

registerConformanceSuites<CaseFile, Suite, RequestCase>({
  loaded,
  labelPrefix: '',
  // Compiled inside each test: a set whose compilation throws fails only its own tests.
  compile: (name, file, suite) => () => compileSuite(name, suite, compileOptions(file, suite)),
  runCase: async (compiled, file, _suite, c) => {
    const result = compiled();
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    assert.deepEqual(errors, [], 'policies of a decision suite must compile');
    assert.ok(result.snapshot);
    const mod = await loadDecide();
    if (mod instanceof Error) assert.fail(`src/check/decide.ts is not available: ${mod.message}`);
    const authenticator = mod.createCheckAuthenticator(result.snapshot, { now: () => NOW, jwksFiles });
    try {
      const out = await mod.decideRequest(result.snapshot, await buildRequest(file, c), { authenticator });
      assertSubset(out, c.expect, 'decision');
    } finally {
      authenticator.close();
    }
  },
});
