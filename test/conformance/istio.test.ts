// Istio conformance suite runner: every test/conformance/istio/*.yaml compiles its policies exactly as
// users apply them, then decides each request through the real check path. Format: test/conformance/istio/README.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import type { CompileOptions, PathNormalization } from '../../src/policy/ir.js';
import { compatibilities, resolveCompatibility, withCompatibility, type Compatibility } from '../../src/policy/compatibility.js';
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
  /** Istio's documented outcome: what `compatibility: istio-exact` must decide. */
  expect: Record<string, unknown>;
  /** Where `compatibility: secure` decides differently: the outcome and why (docs/istio.md lists each). */
  secure?: { expect: Record<string, unknown>; why: string };
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

/** A suite's options over the compatibility's defaults; an explicit `pathNormalization` wins, as in config. */
function compileOptions(file: CaseFile, suite: Suite, compatibility: Compatibility): CompileOptions {
  const w = { ...file.defaults?.workload, ...suite.workload };
  const o = { ...file.defaults?.options, ...suite.options };
  const settings = resolveCompatibility(compatibility, { pathNormalization: o.pathNormalization });
  return withCompatibility({
    workload: {
      namespace: w.namespace ?? 'foo', labels: w.labels ?? { app: 'httpbin', version: 'v1' }, annotations: {},
      serviceAccount: w.serviceAccount ?? 'httpbin', trustDomain: o.trustDomain ?? 'cluster.local',
      trustDomainAliases: o.trustDomainAliases ?? [],
    },
    rootNamespace: o.rootNamespace ?? 'istio-system',
    pathNormalization: settings.pathNormalization,
    customProviders: o.customProviders ?? [],
    linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
  }, compatibility, settings);
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

test('every case that decides differently under compatibility: secure says why', () => {
  const differing = loaded.flatMap(({ file }) => file.suites.flatMap((s) => (s.cases ?? []).filter((c) => c.secure)));
  assert.ok(differing.length > 0);
  for (const c of differing) assert.ok((c.secure?.why ?? '').length > 10, `${c.name}: secure.why is missing`);
});

// The whole suite runs under both settings: istio-exact must reproduce Istio's documented outcome
// (`expect`); secure decides the same except where a case lists its `secure` outcome and reason.
for (const compatibility of compatibilities) registerConformanceSuites<CaseFile, Suite, RequestCase>({
  loaded,
  labelPrefix: `[${compatibility}] `,
  // Compiled inside each test: a set whose compilation throws fails only its own tests.
  compile: (name, file, suite) => () => compileSuite(name, suite, compileOptions(file, suite, compatibility)),
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
      assertSubset(out, compatibility === 'secure' && c.secure ? c.secure.expect : c.expect, 'decision');
    } finally {
      authenticator.close();
    }
  },
});
