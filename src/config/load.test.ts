import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics.js';
import { loadConfig, parseDuration, parseHostPort, parseSize, parseWorkloadFlags, type LoadConfigResult } from './load.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../test/helpers/paths.js';
import { configSchema, renderConfigurationReference, renderRunHelp } from './schema.js';
import type { Config } from './types.js';

const base = `
listeners:
  - listen: 0.0.0.0:8443
    upstream: http://127.0.0.1:8080
policies: [policies]
cert: certs/svid.pem
key: certs/svid.key
trustBundle: /etc/portcullis/ca.pem
namespace: shop
`;

function files(map: Record<string, string>) {
  return { cwd: '/work/here', readFile: async (p: string) => { const t = map[p]; if (t === undefined) throw new Error(`ENOENT: ${p}`); return t; } };
}

async function load(yaml: string | undefined, flags: string[] = []): Promise<LoadConfigResult> {
  const argv = yaml === undefined ? flags : ['--config', '/etc/pc/portcullis.yaml', ...flags];
  return loadConfig(argv, files(yaml === undefined ? {} : { '/etc/pc/portcullis.yaml': yaml }));
}

async function ok(yaml: string | undefined, flags: string[] = []): Promise<Config> {
  const r = await load(yaml, flags);
  if ('diagnostics' in r) assert.fail(r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.config;
}

async function errors(yaml: string | undefined, flags: string[] = []): Promise<Diagnostic[]> {
  const r = await load(yaml, flags);
  assert.ok('diagnostics' in r, 'expected diagnostics, got a config');
  return r.diagnostics.filter((d) => d.severity === 'error');
}

/** Asserts one error with this code at file:line:col and field path. */
function expectError(list: Diagnostic[], code: string, where: string, fieldPath: string): Diagnostic {
  const found = list.find((d) => d.code === code && `${d.origin.file}:${d.origin.line}:${d.origin.column}` === where && d.fieldPath === fieldPath);
  assert.ok(found, `no ${code} at ${where} (${fieldPath}); got:\n${list.map(formatDiagnostic).join('\n')}`);
  return found;
}

test('a minimal file gets every secure default and resolves relative paths against its directory', async () => {
  const c = await ok(base);
  assert.equal(c.configFile, '/etc/pc/portcullis.yaml');
  assert.equal(c.mode, 'enforce');
  assert.deepEqual(c.listeners, [{ name: 'inbound-8443', listen: { host: '0.0.0.0', port: 8443 }, upstream: 'http://127.0.0.1:8080', mode: 'strict', workloadPort: 8080 }]);
  assert.deepEqual(c.policies, ['/etc/pc/policies']);
  assert.equal(c.tls.certFile, '/etc/pc/certs/svid.pem');
  assert.equal(c.tls.keyFile, '/etc/pc/certs/svid.key');
  assert.equal(c.tls.trustBundleFile, '/etc/portcullis/ca.pem');
  assert.deepEqual(c.tls.trustDomains, ['cluster.local']);
  assert.deepEqual(c.admin, { host: '127.0.0.1', port: 15000 });
  assert.deepEqual(c.limits, {
    maxHeaderBytes: 60 * 1024, maxHeaderCount: 100, headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, bodyTimeoutMs: 30_000, idleTimeoutMs: 3_600_000,
    tlsHandshakeTimeoutMs: 10_000, h2MaxConcurrentStreams: 100, h2MaxResetsPerSecond: 200, maxConnections: 10_000,
    upstreamConnectTimeoutMs: 5000, upstreamTimeoutMs: 300_000, drainTimeoutMs: 20_000, drainDelayMs: 0, maxJwtBytes: 8192,
  });
  assert.deepEqual(c.jwks, { cacheTtlMs: 600_000, refreshIntervalMs: 300_000, staleGraceMs: 3_600_000, unknownKidMinIntervalMs: 10_000, clockSkewSeconds: 60 });
  // compatibility: secure by default, and the defaults it sets.
  assert.equal(c.compile.compatibility, 'secure');
  assert.equal(c.compile.pathNormalization, 'MERGE_SLASHES');
  assert.equal(c.compile.denyPathsIgnoreCase, true);
  assert.equal(c.compile.denyHostsAnyPort, true);
  assert.equal(c.compile.jwtDefaultQueryParam, false);
  assert.equal(c.compile.jwtRequireExpiration, true);
  assert.equal(c.rejectEncodedSlashes, true);
  assert.equal(c.compile.workload.namespace, 'shop');
  assert.equal(c.compile.workload.serviceAccount, 'default');
  assert.equal(c.compile.workload.trustDomain, 'cluster.local');
  assert.equal(c.compile.rootNamespace, 'istio-system');
  assert.equal(c.compile.pathNormalization, 'MERGE_SLASHES');
  assert.equal(c.compile.linkerd.defaultPolicy, 'all-unauthenticated');
  // Left to the schema default: Linkerd's default takes part only once a Linkerd resource exists.
  assert.equal(c.compile.linkerd.defaultPolicyConfigured, false);
  assert.deepEqual(c.compile.linkerd.clusterNetworks, ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16', 'fd00::/8']);
  assert.deepEqual(c.decisionLog, { destination: 'stdout', maxBufferedEvents: 10_000, capture: { mode: 'replayable', redactHeaders: [] } });
});

test('every key of the file form is understood', async () => {
  const c = await ok(`${base}
mode: audit
outbound:
  - listen: 127.0.0.1:15001
    target: https://orders.shop:8443
    expectIdentity: spiffe://cluster.local/ns/shop/sa/orders
admin: "[::1]:9901"
trustDomains: [cluster.local, old.example]
labels: {app: web, version: 1.10}
namespaceLabels: {team: shop}
peers: registry/peers.yaml
annotations:
  config.linkerd.io/default-inbound-policy: deny
serviceAccount: web
trustDomain: prod.example
trustDomainAliases: [old.example]
rootNamespace: mesh-root
pathNormalization: DECODE_AND_MERGE_SLASHES
rejectEncodedSlashes: true
defaultPolicy: cluster-authenticated
clusterNetworks: [10.0.0.0/8]
probeNetworks: [10.1.0.0/16]
probePaths:
  8080: [/live, /ready]
portNames: {http: 8080}
controlPlaneNamespace: linkerd-cp
decisionLog: logs/decisions.ndjson
decisionLogBuffer: 50
decisionLogCapture: minimal
decisionLogRedactHeaders: [X-Api-Key]
logLevel: debug
limits:
  maxHeaderBytes: 32KiB
  headersTimeout: 2s
  idleTimeout: 30m
jwks:
  cacheTtl: 1m
  requireExpiration: true
  clockSkew: 30s
`);
  assert.equal(c.mode, 'audit');
  assert.deepEqual(c.outbound, [{ name: 'outbound-15001', listen: { host: '127.0.0.1', port: 15001 }, target: 'https://orders.shop:8443', expectIdentity: 'spiffe://cluster.local/ns/shop/sa/orders' }]);
  assert.deepEqual(c.admin, { host: '::1', port: 9901 });
  assert.deepEqual(c.tls.trustDomains, ['cluster.local', 'old.example']);
  assert.deepEqual(c.compile.workload, {
    namespace: 'shop', labels: { app: 'web', version: '1.10' }, annotations: { 'config.linkerd.io/default-inbound-policy': 'deny' }, serviceAccount: 'web', trustDomain: 'prod.example', trustDomainAliases: ['old.example'],
    namespaceLabels: { team: 'shop', 'kubernetes.io/metadata.name': 'shop' },
  });
  assert.equal(c.peersFile, '/etc/pc/registry/peers.yaml');
  assert.equal(c.compile.rootNamespace, 'mesh-root');
  assert.equal(c.compile.pathNormalization, 'DECODE_AND_MERGE_SLASHES');
  assert.equal(c.rejectEncodedSlashes, true);
  assert.deepEqual(c.compile.linkerd, { defaultPolicy: 'cluster-authenticated', defaultPolicyConfigured: true, clusterNetworks: ['10.0.0.0/8'], probeNetworks: ['10.1.0.0/16'], probePaths: { 8080: ['/live', '/ready'] }, portNames: { http: 8080 }, controlPlaneNamespace: 'linkerd-cp' });
  assert.deepEqual(c.decisionLog, { destination: '/etc/pc/logs/decisions.ndjson', maxBufferedEvents: 50, capture: { mode: 'minimal', redactHeaders: ['x-api-key'] } });
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.limits.maxHeaderBytes, 32 * 1024);
  assert.equal(c.limits.headersTimeoutMs, 2000);
  assert.equal(c.limits.idleTimeoutMs, 1_800_000);
  assert.equal(c.jwks.cacheTtlMs, 60_000);
  assert.equal(c.compile.jwtRequireExpiration, true);
  assert.equal(c.jwks.clockSkewSeconds, 30);
});

test('flags win over the file; list flags replace the list; relative flag paths resolve against cwd', async () => {
  const c = await ok(base, [
    '--mode', 'audit',
    '--listener', 'name=grpc,listen=127.0.0.1:9443,upstream=h2c://127.0.0.1:9090,mode=permissive',
    '--listener', 'listen=127.0.0.1:8443,upstream=http://127.0.0.1:8080,workloadPort=80',
    '--policies', 'p1', '--policies', '/abs/p2',
    '--headers-timeout', '500ms', '--max-header-bytes', '16KiB',
    '--labels', 'app=web,tier=front', '--decision-log', 'off', '--reject-encoded-slashes',
    '--jwt-require-expiration', '--no-jwt-require-expiration',
  ]);
  assert.equal(c.mode, 'audit');
  assert.deepEqual(c.listeners, [
    { name: 'grpc', listen: { host: '127.0.0.1', port: 9443 }, upstream: 'h2c://127.0.0.1:9090', mode: 'permissive', workloadPort: 9090 },
    { name: 'inbound-8443', listen: { host: '127.0.0.1', port: 8443 }, upstream: 'http://127.0.0.1:8080', mode: 'strict', workloadPort: 80 },
  ]);
  assert.deepEqual(c.policies, ['/work/here/p1', '/abs/p2']);
  assert.equal(c.limits.headersTimeoutMs, 500);
  assert.equal(c.limits.maxHeaderBytes, 16 * 1024);
  assert.deepEqual(c.compile.workload.labels, { app: 'web', tier: 'front' });
  assert.equal(c.decisionLog.destination, 'off');
  assert.equal(c.rejectEncodedSlashes, true);
  assert.equal(c.compile.jwtRequireExpiration, false);
  assert.equal(c.tls.certFile, '/etc/pc/certs/svid.pem', 'keys not given as flags still come from the file');
});

test('compatibility: istio-exact sets Istio defaults; explicit keys win over the switch in either setting', async () => {
  const exact = await ok(`${base}compatibility: istio-exact\n`);
  assert.equal(exact.compile.compatibility, 'istio-exact');
  assert.deepEqual([exact.compile.pathNormalization, exact.rejectEncodedSlashes, exact.compile.denyPathsIgnoreCase, exact.compile.denyHostsAnyPort, exact.compile.jwtDefaultQueryParam, exact.compile.jwtRequireExpiration],
    ['BASE', false, false, false, true, false]);
  const mixed = await ok(`${base}compatibility: istio-exact\ndenyPathsIgnoreCase: true\njwks:\n  requireExpiration: true\n`, ['--path-normalization', 'MERGE_SLASHES']);
  assert.deepEqual([mixed.compile.pathNormalization, mixed.compile.denyPathsIgnoreCase, mixed.compile.jwtRequireExpiration], ['MERGE_SLASHES', true, true]);
  const secure = await ok(base, ['--no-reject-encoded-slashes', '--jwt-expiration-optional-issuers', 'https://legacy.example']);
  assert.equal(secure.rejectEncodedSlashes, false);
  assert.deepEqual(secure.compile.jwtExpirationOptionalIssuers, ['https://legacy.example']);
  const flag = await ok(base, ['--compatibility', 'istio-exact']);
  assert.equal(flag.compile.compatibility, 'istio-exact');
  const errs = await errors(`${base}compatibility: istio\n`);
  expectError(errs, 'PRT_CONFIG_INVALID_ENUM', '/etc/pc/portcullis.yaml:10:16', 'compatibility');
});

test('flags alone are a complete configuration', async () => {
  const c = await ok(undefined, ['--listener', 'listen=0.0.0.0:8443,upstream=http://127.0.0.1:8080', '--policies', 'pol', '--cert', 'c.pem', '--key', 'k.pem', '--trust-bundle', 'ca.pem', '--namespace', 'ns1', '--admin', '0.0.0.0:15000']);
  assert.equal(c.configFile, undefined);
  assert.equal(c.tls.certFile, '/work/here/c.pem');
  assert.deepEqual(c.admin, { host: '0.0.0.0', port: 15000 });
});

test('PC-30: mode accepts only enforce or audit, in the file and as a flag', async () => {
  for (const bad of ['Audit', 'AUDIT', 'true', 'permissive', '""', 'enforce ']) {
    const errs = await errors(`${base}mode: ${bad === 'enforce ' ? '"enforce "' : bad}\n`);
    expectError(errs, 'PRT_CONFIG_INVALID_ENUM', '/etc/pc/portcullis.yaml:10:7', 'mode');
  }
  const errs = await errors(base, ['--mode', 'shadow']);
  expectError(errs, 'PRT_CONFIG_INVALID_ENUM', '<argv>:1:3', 'mode');
});

test('each error kind names file:line:col and the field path', async () => {
  const yaml = `listeners:
  - listen: 0.0.0.0:70000
    upstream: https://127.0.0.1:8080
    colour: blue
  - listen: 0.0.0.0:9443
    upstream: http://127.0.0.1:8080/api
  - listen: nowhere
    upstream: h2c://127.0.0.1
    workloadPort: 0
policies: [p]
cert: c
key: k
trustBundle: t
namespace: ns
admn: 127.0.0.1:1
pathNormalization: merge_slashes
clusterNetworks: [10.0.0.0/33, banana]
portNames: {http: eighty}
limits:
  headersTimeout: 10
  requestTimeout: 5 minutes
  maxHeaderBytes: 60 KB please
  maxHeaderCount: -3
  maxConnectionz: 5
jwks: {staleGrace: forever}
decisionLogBuffer: 0
rejectEncodedSlashes: yes please
`;
  const errs = await errors(yaml);
  const f = '/etc/pc/portcullis.yaml';
  expectError(errs, 'PRT_CONFIG_INVALID_ADDRESS', `${f}:2:13`, 'listeners[0].listen');
  expectError(errs, 'PRT_CONFIG_INVALID_URL', `${f}:3:15`, 'listeners[0].upstream');
  expectError(errs, 'PRT_CONFIG_UNKNOWN_KEY', `${f}:4:5`, 'listeners[0].colour');
  expectError(errs, 'PRT_CONFIG_INVALID_URL', `${f}:6:15`, 'listeners[1].upstream');
  expectError(errs, 'PRT_CONFIG_INVALID_ADDRESS', `${f}:7:13`, 'listeners[2].listen');
  expectError(errs, 'PRT_CONFIG_INVALID_PORT', `${f}:9:19`, 'listeners[2].workloadPort');
  const unknown = expectError(errs, 'PRT_CONFIG_UNKNOWN_KEY', `${f}:15:1`, 'admn');
  assert.match(unknown.message, /did you mean 'admin'/);
  expectError(errs, 'PRT_CONFIG_INVALID_ENUM', `${f}:16:20`, 'pathNormalization');
  expectError(errs, 'PRT_CONFIG_INVALID_CIDR', `${f}:17:19`, 'clusterNetworks[0]');
  expectError(errs, 'PRT_CONFIG_INVALID_CIDR', `${f}:17:32`, 'clusterNetworks[1]');
  expectError(errs, 'PRT_CONFIG_INVALID_PORT', `${f}:18:19`, 'portNames.http');
  expectError(errs, 'PRT_CONFIG_INVALID_DURATION', `${f}:20:19`, 'limits.headersTimeout');
  expectError(errs, 'PRT_CONFIG_INVALID_DURATION', `${f}:21:19`, 'limits.requestTimeout');
  expectError(errs, 'PRT_CONFIG_INVALID_SIZE', `${f}:22:19`, 'limits.maxHeaderBytes');
  expectError(errs, 'PRT_CONFIG_OUT_OF_RANGE', `${f}:23:19`, 'limits.maxHeaderCount');
  expectError(errs, 'PRT_CONFIG_UNKNOWN_KEY', `${f}:24:3`, 'limits.maxConnectionz');
  expectError(errs, 'PRT_CONFIG_INVALID_DURATION', `${f}:25:20`, 'jwks.staleGrace');
  expectError(errs, 'PRT_CONFIG_OUT_OF_RANGE', `${f}:26:20`, 'decisionLogBuffer');
  expectError(errs, 'PRT_CONFIG_TYPE', `${f}:27:23`, 'rejectEncodedSlashes');
  // Diagnostics come in reading order.
  const lines = errs.map((d) => d.origin.line);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
});

test('missing required keys, YAML syntax errors, duplicate keys and an unreadable file are reported', async () => {
  const missing = await errors('namespace: ns\n');
  for (const key of ['listeners', 'policies', 'cert', 'key', 'trustBundle']) expectError(missing, 'PRT_CONFIG_MISSING_KEY', '/etc/pc/portcullis.yaml:1:1', key);

  const syntax = await errors(`${base}labels: {app: [unclosed\n`);
  assert.ok(syntax.some((d) => d.code === 'PRT_CONFIG_YAML' && d.origin.file === '/etc/pc/portcullis.yaml' && d.origin.line >= 10), syntax.map(formatDiagnostic).join('\n'));

  const dup = await errors(`${base}namespace: other\n`);
  assert.ok(dup.some((d) => d.code === 'PRT_CONFIG_YAML' && d.origin.line === 10), dup.map(formatDiagnostic).join('\n'));

  const unreadable = await loadConfig(['--config', 'nope.yaml'], files({}));
  assert.ok('diagnostics' in unreadable);
  expectError(unreadable.diagnostics, 'PRT_CONFIG_FILE_UNREADABLE', '<argv>:1:1', 'config');

  const notMap = await errors('- a\n- b\n');
  expectError(notMap, 'PRT_CONFIG_TYPE', '/etc/pc/portcullis.yaml:1:1', '');
});

test('flag errors: unknown flag, missing value, stray argument, bad listener field, repeated scalar flag', async () => {
  const errs = await errors(base, ['--nope', '--listener', 'listen=1.2.3.4:1,upstream=http://x:1,zone=a', '--namespace', 'a', '--namespace', 'b', 'stray', '--cert']);
  expectError(errs, 'PRT_CONFIG_UNKNOWN_FLAG', '<argv>:1:3', '');
  expectError(errs, 'PRT_CONFIG_UNKNOWN_KEY', '<argv>:1:4', 'listeners[0].zone');
  expectError(errs, 'PRT_CONFIG_FLAG', '<argv>:1:8', 'namespace');
  expectError(errs, 'PRT_CONFIG_FLAG', '<argv>:1:10', '');
  expectError(errs, 'PRT_CONFIG_FLAG', '<argv>:1:11', '');
});

test('conflicts: duplicate listener names and addresses', async () => {
  const errs = await errors(`${base}outbound:
  - name: inbound-8443
    listen: 0.0.0.0:8443
    target: https://x:1
    expectIdentity: spiffe://cluster.local/ns/a/sa/b
admin: 0.0.0.0:8443
`);
  assert.ok(errs.some((d) => d.code === 'PRT_CONFIG_CONFLICT' && d.fieldPath === 'outbound[0].name'));
  assert.ok(errs.some((d) => d.code === 'PRT_CONFIG_CONFLICT' && d.fieldPath === 'outbound[0].listen'));
  assert.ok(errs.some((d) => d.code === 'PRT_CONFIG_CONFLICT' && d.fieldPath === 'admin'));
});

test('outbound entries are validated: https target and a SPIFFE ID', async () => {
  const errs = await errors(`${base}outbound:
  - listen: 127.0.0.1:15001
    target: http://x:1
    expectIdentity: orders
`);
  expectError(errs, 'PRT_CONFIG_INVALID_URL', '/etc/pc/portcullis.yaml:12:13', 'outbound[0].target');
  expectError(errs, 'PRT_CONFIG_INVALID_VALUE', '/etc/pc/portcullis.yaml:13:21', 'outbound[0].expectIdentity');
});

test('run --help lists every key with its flag, type and default', () => {
  const help = renderRunHelp();
  for (const k of configSchema) {
    assert.ok(help.includes(`--${k.flag}`), `help lacks --${k.flag}`);
    assert.ok(help.includes(`key: ${k.key};`), `help lacks key ${k.key}`);
    if (k.default) assert.ok(help.includes(`default ${k.default}`), `help lacks default of ${k.key}`);
  }
  assert.ok(help.includes('--config FILE'));
});

test('parseWorkloadFlags gives the same CompileOptions as the run keys and leaves other flags alone', async () => {
  const argv = ['--namespace', 'shop', '--labels', 'app=web', '--service-account', 'web', '--trust-domain', 'td', '--trust-domain-aliases', 'a,b',
    '--root-namespace', 'rootns', '--path-normalization', 'BASE', '--default-policy', 'deny', '--cluster-networks', '10.0.0.0/8',
    '--annotations', 'x=y', '--probe-paths', '8080=/live,8080=/ready', '--port-names', 'http=8080'];
  const w = parseWorkloadFlags([...argv, '--request', 'GET /x', 'file.yaml', '--json'], '/cwd');
  assert.deepEqual(w.diagnostics, []);
  assert.deepEqual(w.rest, ['--request', 'GET /x', 'file.yaml', '--json']);
  const c = await ok(base.replace('namespace: shop', ''), argv);
  assert.deepEqual(w.options, c.compile);

  const defaults = parseWorkloadFlags([]);
  assert.equal(defaults.options.workload.namespace, 'default');
  assert.equal(defaults.options.pathNormalization, 'MERGE_SLASHES');

  const bad = parseWorkloadFlags(['--path-normalization', 'nope', '--probe-paths', 'x=/a']);
  assert.deepEqual(bad.diagnostics.map((d) => [d.code, d.fieldPath, d.origin.column]), [['PRT_CONFIG_INVALID_ENUM', 'pathNormalization', 1], ['PRT_CONFIG_INVALID_PORT', 'probePaths.x', 3]]);
});

test('duration, size and address parsers', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1.5s'), 1500);
  for (const bad of ['10', '', 's', '10 s', '-1s', '1d', '1e3s']) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(parseSize('60KiB'), 61_440);
  assert.equal(parseSize('1MiB'), 1_048_576);
  assert.equal(parseSize('512'), 512);
  assert.equal(parseSize('1MB'), 1_000_000);
  for (const bad of ['', 'KiB', '1 furlong', '-1']) assert.equal(parseSize(bad), undefined, bad);
  assert.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseHostPort('localhost:0'), { host: 'localhost', port: 0 });
  for (const bad of ['::1:80', '1.2.3.4', '[1.2.3.4]:1', 'a b:1', 'x:99999']) assert.equal(typeof parseHostPort(bad), 'string', bad);
});

test('the sample config loads, sets every key, and docs/configuration.md shows the generated table and the sample', async () => {
  const root = repoRoot();
  const samplePath = join(root, 'examples', 'config', 'portcullis.yaml');
  const r = await loadConfig(['--config', samplePath], { cwd: root, readFile: (p) => readFile(p, 'utf8') });
  if ('diagnostics' in r) assert.fail(r.diagnostics.map(formatDiagnostic).join('\n'));
  assert.equal(r.config.listeners.length, 2);
  assert.equal(r.config.outbound.length, 1);
  const sample = await readFile(samplePath, 'utf8');
  for (const k of configSchema) {
    const leaf = k.key.split('.').pop() as string;
    assert.match(sample, new RegExp(`^\\s*#?\\s*${leaf}:`, 'm'), `sample does not show ${k.key}`);
  }
  const doc = await readFile(join(root, 'docs', 'configuration.md'), 'utf8');
  assert.ok(doc.includes(renderConfigurationReference()), 'docs/configuration.md is out of date: paste renderConfigurationReference()');
  assert.ok(doc.includes(sample), 'docs/configuration.md does not contain the current sample config');
});

test('opaque TCP listeners: protocol tcp with a tcp:// upstream, from the file and from --listener', async () => {
  const yaml = `listeners:
  - listen: 0.0.0.0:15432
    upstream: tcp://127.0.0.1:5432
    protocol: tcp
  - listen: 0.0.0.0:8443
    upstream: http://127.0.0.1:8080
    protocol: http
policies: [p]
cert: c
key: k
trustBundle: t
namespace: ns
`;
  const c = await ok(yaml);
  assert.deepEqual(c.listeners[0], { name: 'inbound-15432', listen: { host: '0.0.0.0', port: 15432 }, upstream: 'tcp://127.0.0.1:5432', mode: 'strict', workloadPort: 5432, protocol: 'tcp' });
  // protocol http (written or absent) leaves the listener exactly as before opaque listeners existed.
  assert.deepEqual(c.listeners[1], { name: 'inbound-8443', listen: { host: '0.0.0.0', port: 8443 }, upstream: 'http://127.0.0.1:8080', mode: 'strict', workloadPort: 8080 });
  const flags = await ok(base, ['--listener', 'name=db,listen=127.0.0.1:15432,upstream=tcp://127.0.0.1:5432,protocol=tcp,mode=permissive,workloadPort=6432']);
  assert.deepEqual(flags.listeners, [{ name: 'db', listen: { host: '127.0.0.1', port: 15432 }, upstream: 'tcp://127.0.0.1:5432', mode: 'permissive', workloadPort: 6432, protocol: 'tcp' }]);
  assert.match(renderRunHelp(), /protocol\s+`http` \(default/);
  assert.match(renderRunHelp(), /protocol=tcp,upstream=tcp:\/\//);
});

test('opaque TCP listeners: protocol and upstream scheme errors name file:line:col and the field path', async () => {
  const yaml = `listeners:
  - listen: 0.0.0.0:15432
    upstream: http://127.0.0.1:5432
    protocol: tcp
  - listen: 0.0.0.0:15433
    upstream: tcp://127.0.0.1:5432
  - listen: 0.0.0.0:15434
    upstream: tcp://127.0.0.1
    protocol: tcp
  - listen: 0.0.0.0:15435
    upstream: tcp://127.0.0.1:5432
    protocol: udp
policies: [p]
cert: c
key: k
trustBundle: t
namespace: ns
`;
  const errs = await errors(yaml);
  const f = '/etc/pc/portcullis.yaml';
  assert.match(expectError(errs, 'PRT_CONFIG_INVALID_URL', `${f}:3:15`, 'listeners[0].upstream').message, /must use tcp:\/\/ \(protocol: tcp\)/);
  assert.match(expectError(errs, 'PRT_CONFIG_INVALID_URL', `${f}:6:15`, 'listeners[1].upstream').message, /set protocol: tcp/);
  assert.match(expectError(errs, 'PRT_CONFIG_INVALID_URL', `${f}:8:15`, 'listeners[2].upstream').message, /needs a port/);
  expectError(errs, 'PRT_CONFIG_INVALID_ENUM', `${f}:12:15`, 'listeners[3].protocol');
  const flagErrs = await errors(base, ['--listener', 'listen=127.0.0.1:1,upstream=tcp://127.0.0.1:2,protocol=sctp']);
  expectError(flagErrs, 'PRT_CONFIG_INVALID_ENUM', '<argv>:1:3', 'listeners[0].protocol');
});
