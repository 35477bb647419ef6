// Owns the one schema of `portcullis run`: every key's YAML name, flag, type, default and meaning.
// load.ts validates against it, renderRunHelp() and docs/configuration.md are generated from it.

/** How a key's value is written and checked. */
export type ValueKind =
  | 'string'
  | 'path'
  | 'pathList'
  | 'boolean'
  | 'integer'
  | 'duration'
  | 'size'
  | 'enum'
  | 'hostPort'
  | 'stringList'
  | 'cidrList'
  | 'stringMap'
  | 'portMap'
  | 'probePaths'
  | 'listeners'
  | 'outbound'
  | 'decisionLog';

export interface KeySpec {
  /** Dotted key as written in the YAML file (`limits.maxHeaderBytes`). */
  key: string;
  /** Flag name without the leading `--` (`max-header-bytes`). */
  flag: string;
  kind: ValueKind;
  /** Default as the user would write it; undefined = no default. */
  default: string | undefined;
  /** `run` refuses to start without it. */
  required?: boolean;
  /** Enum values (kind `enum`). */
  values?: readonly string[];
  /** Inclusive bounds for integers, durations (ms) and sizes (bytes). */
  min?: number;
  max?: number;
  /** Flag may repeat (lists); a repeated flag replaces the whole list from the file. */
  repeatable?: boolean;
  /** Shared with `portcullis check` / `explain` (parseWorkloadFlags): workload facts and the request-handling
   *  settings a decision depends on. */
  workload?: boolean;
  /** Type as shown in help. */
  type: string;
  help: string;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const hour = 3_600_000;

import { compatibilities } from '../policy/compatibility.js';

export const pathNormalizations = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export const linkerdDefaultPolicies = ['all-unauthenticated', 'all-authenticated', 'cluster-unauthenticated', 'cluster-authenticated', 'deny', 'audit'] as const;
export const defaultClusterNetworks = '10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8';

/** Sub-keys of one `listeners[]` entry (YAML) or one `--listener k=v,...` flag. */
export const listenerFields: readonly { key: string; required: boolean; help: string }[] = [
  { key: 'name', required: false, help: 'name in logs and metrics; default `inbound-<port>`' },
  { key: 'listen', required: true, help: 'mTLS address to accept on, `host:port`' },
  { key: 'upstream', required: true, help: 'the workload: `http://127.0.0.1:8080` (HTTP/1.1), `h2c://127.0.0.1:9090` (HTTP/2, gRPC), or `tcp://127.0.0.1:5432` with `protocol: tcp`' },
  { key: 'protocol', required: false, help: '`http` (default: requests decided one by one) or `tcp` (opaque: one decision per connection, bytes piped to a `tcp://` upstream)' },
  { key: 'mode', required: false, help: '`strict` (client certificate required, default) or `permissive`' },
  { key: 'workloadPort', required: false, help: 'port policies see (`ports`, Linkerd Server port); default the upstream port' },
];

/** Sub-keys of one `outbound[]` entry or one `--outbound k=v,...` flag. */
export const outboundFields: readonly { key: string; required: boolean; help: string }[] = [
  { key: 'name', required: false, help: 'name in logs and metrics; default `outbound-<port>`' },
  { key: 'listen', required: true, help: 'plaintext address the app calls, `host:port` (keep it on loopback)' },
  { key: 'target', required: true, help: 'destination sidecar, `https://host:port`' },
  { key: 'expectIdentity', required: true, help: 'SPIFFE ID the destination must present (`spiffe://...`)' },
  { key: 'serverName', required: false, help: 'SNI / authority to send; default the target host' },
];

export const configSchema: readonly KeySpec[] = [
  // --- what to run
  { key: 'mode', flag: 'mode', kind: 'enum', values: ['enforce', 'audit'], default: 'enforce', type: 'enforce|audit',
    help: 'enforce denies; audit forwards would-be denials and logs them (identity, smuggling and parse rejections are still enforced). Any other value is an error.' },
  { key: 'listeners', flag: 'listener', kind: 'listeners', default: undefined, required: true, repeatable: true, type: 'list of listener',
    help: 'inbound mTLS listeners; flag form `name=inbound-8443,listen=0.0.0.0:8443,upstream=http://127.0.0.1:8080,mode=strict,workloadPort=8080` (repeat for more; `protocol=tcp,upstream=tcp://127.0.0.1:5432` for an opaque TCP port)' },
  { key: 'outbound', flag: 'outbound', kind: 'outbound', default: undefined, repeatable: true, type: 'list of outbound',
    help: 'plaintext listeners for the app that originate mTLS; flag form `listen=127.0.0.1:15001,target=https://peer:8443,expectIdentity=spiffe://td/ns/x/sa/y`' },
  { key: 'admin', flag: 'admin', kind: 'hostPort', default: '127.0.0.1:15000', type: 'host:port',
    help: 'admin listener (/metrics, /ready, /live, /policy); plaintext, keep it off untrusted networks' },
  { key: 'statusListen', flag: 'status-listen', kind: 'hostPort', default: undefined, type: 'host:port',
    help: 'optional read-only status listener (/ready, /live, /metrics; never /policy) for kubelet probes and Prometheus on the pod IP while admin stays on loopback' },
  { key: 'policies', flag: 'policies', kind: 'pathList', default: undefined, required: true, repeatable: true, type: 'list of path',
    help: 'policy files or directories (*.yaml, *.yml, *.json, recursive); watched and hot-reloaded' },
  { key: 'peers', flag: 'peers', kind: 'path', default: undefined, type: 'path',
    help: 'peer registry file (YAML or JSON, docs/cni.md): the labels behind each SPIFFE ID, for label-based peer selectors; watched and hot-reloaded, a refused file keeps the last good registry. Without it every label-based allow fails closed' },
  // --- TLS
  { key: 'cert', flag: 'cert', kind: 'path', default: undefined, required: true, type: 'path', help: 'own X509-SVID certificate chain (PEM); reloaded on change' },
  { key: 'key', flag: 'key', kind: 'path', default: undefined, required: true, type: 'path', help: 'private key of the SVID (PEM)' },
  { key: 'trustBundle', flag: 'trust-bundle', kind: 'path', default: undefined, required: true, type: 'path', help: 'CA certificates peers must chain to (PEM)' },
  { key: 'crls', flag: 'crl', kind: 'pathList', default: undefined, repeatable: true, type: 'list of path',
    help: 'certificate revocation lists (PEM, several blocks allowed, or DER), checked for the peer leaf and its intermediates at every handshake (inbound callers and outbound destinations); watched like the bundle, a file that stops parsing keeps its last good lists' },
  { key: 'trustDomains', flag: 'trust-domains', kind: 'stringList', default: undefined, type: 'list of string',
    help: 'peer trust domains accepted at the handshake; default trustDomain plus trustDomainAliases' },
  { key: 'jwksCa', flag: 'jwks-ca', kind: 'path', default: undefined, type: 'path',
    help: 'extra CA certificates (PEM) trusted for https:// jwksUri servers, added to the system roots: an in-cluster issuer with a private CA' },
  // --- workload facts (shared with check/explain)
  { key: 'workloadFrom', flag: 'workload-from', kind: 'path', default: undefined, type: 'path',
    help: 'Downward API directory (files namespace, labels, annotations) giving the workload facts instead of namespace/labels/annotations; watched, so a relabelled pod is decided with its current labels' },
  { key: 'namespace', flag: 'namespace', kind: 'string', default: undefined, required: true, workload: true, type: 'string',
    help: 'namespace of the workload; selects policies (`portcullis check` defaults it to `default`)' },
  { key: 'labels', flag: 'labels', kind: 'stringMap', default: '', workload: true, type: 'map k=v,...', help: 'workload labels, matched by Istio selectors and Linkerd podSelectors' },
  { key: 'namespaceLabels', flag: 'namespace-labels', kind: 'stringMap', default: '', workload: true, type: 'map k=v,...',
    help: 'labels of the workload\'s namespace, matched by namespace selectors that pick the workload (kubernetes.io/metadata.name is always the namespace)' },
  { key: 'annotations', flag: 'annotations', kind: 'stringMap', default: '', workload: true, type: 'map k=v,...', help: 'workload annotations (e.g. config.linkerd.io/default-inbound-policy)' },
  { key: 'serviceAccount', flag: 'service-account', kind: 'string', default: 'default', workload: true, type: 'string', help: 'service account of the workload (its own SPIFFE ID)' },
  { key: 'trustDomain', flag: 'trust-domain', kind: 'string', default: 'cluster.local', workload: true, type: 'string', help: 'mesh trust domain' },
  { key: 'trustDomainAliases', flag: 'trust-domain-aliases', kind: 'stringList', default: '', workload: true, type: 'list of string', help: 'other trust domains treated as this one in policy principals (Istio trustDomainAliases)' },
  { key: 'rootNamespace', flag: 'root-namespace', kind: 'string', default: 'istio-system', workload: true, type: 'string', help: 'Istio root namespace (policies there apply mesh-wide)' },
  { key: 'compatibility', flag: 'compatibility', kind: 'enum', values: compatibilities, default: 'secure', workload: true, type: compatibilities.join('|'),
    help: '`secure` closes the bypasses Istio documents as its behaviour (docs/istio.md lists each); `istio-exact` decides as Istio does. Sets the defaults of pathNormalization, rejectEncodedSlashes, denyPathsIgnoreCase and jwks.requireExpiration (an explicit key wins), DENY host ports and the JWT default locations' },
  { key: 'pathNormalization', flag: 'path-normalization', kind: 'enum', values: pathNormalizations, default: undefined, workload: true, type: pathNormalizations.join('|'),
    help: 'Istio path normalization applied before matching and forwarding; default by compatibility: secure MERGE_SLASHES, istio-exact BASE' },
  { key: 'denyPathsIgnoreCase', flag: 'deny-paths-ignore-case', kind: 'boolean', default: undefined, workload: true, type: 'boolean',
    help: 'Istio DENY rules match their paths case-insensitively (only ever widens a deny); default by compatibility: secure true, istio-exact false' },
  { key: 'rejectEncodedSlashes', flag: 'reject-encoded-slashes', kind: 'boolean', default: undefined, workload: true, type: 'boolean',
    help: 'answer 400 to paths containing %2F or %5C (any case); default by compatibility: secure true (false under DECODE_AND_MERGE_SLASHES, which decodes them), istio-exact false' },
  { key: 'defaultPolicy', flag: 'default-policy', kind: 'enum', values: linkerdDefaultPolicies, default: 'all-unauthenticated', workload: true, type: linkerdDefaultPolicies.join('|'),
    help: 'Linkerd cluster default inbound policy; when set (file or flag) it governs the workload even with no Linkerd document loaded, else only once one is' },
  { key: 'clusterNetworks', flag: 'cluster-networks', kind: 'cidrList', default: defaultClusterNetworks, workload: true, type: 'list of CIDR', help: 'Linkerd cluster networks' },
  { key: 'probeNetworks', flag: 'probe-networks', kind: 'cidrList', default: '0.0.0.0/0,::/0', workload: true, type: 'list of CIDR', help: 'Linkerd probe networks (unauthenticated probe routes)' },
  { key: 'probePaths', flag: 'probe-paths', kind: 'probePaths', default: '', workload: true, type: 'map port=path,...', help: 'HTTP probe paths per port, e.g. `8080=/live,8080=/ready`' },
  { key: 'portNames', flag: 'port-names', kind: 'portMap', default: '', workload: true, type: 'map name=port,...', help: 'named container ports, e.g. `http=8080,grpc=9090`' },
  { key: 'controlPlaneNamespace', flag: 'control-plane-namespace', kind: 'string', default: 'linkerd', workload: true, type: 'string', help: 'Linkerd control-plane namespace used in identity names' },
  { key: 'ciliumPolicyEnforcement', flag: 'cilium-policy-enforcement', kind: 'enum', values: ['default', 'always', 'never'], default: 'default', workload: true, type: 'default|always|never',
    help: 'Cilium agent policy enforcement mode: default (a Cilium policy selecting the pod isolates it), always (the pod is in default deny even with no policy), never (Cilium policies are not enforced)' },
  { key: 'concurrency', flag: 'concurrency', kind: 'integer', default: '1', min: 1, max: 64, type: 'integer',
    help: 'worker processes sharing the listeners (node:cluster); each compiles the policies itself; the admin listener aggregates their metrics' },
  // --- observability
  { key: 'decisionLog', flag: 'decision-log', kind: 'decisionLog', default: 'stdout', type: 'stdout|stderr|off|path', help: 'where decision events (NDJSON, one line per request) go' },
  { key: 'decisionLogBuffer', flag: 'decision-log-buffer', kind: 'integer', default: '10000', min: 1, max: 10_000_000, type: 'integer',
    help: 'events buffered for a slow destination before new ones are dropped (and counted in portcullis_decision_log_dropped_total)' },
  { key: 'decisionLogCapture', flag: 'decision-log-capture', kind: 'enum', values: ['minimal', 'replayable'], default: 'replayable', type: 'minimal|replayable',
    help: '`replayable` adds what `portcullis replay` needs to decide a request again (raw path, query parameter names, request headers with credential values replaced by `[redacted]`, JWT claims, destination IP, SNI); `minimal` logs the decision only (docs/replay.md weighs the privacy trade-off)' },
  { key: 'decisionLogRedactHeaders', flag: 'decision-log-redact-headers', kind: 'stringList', default: '', type: 'list of string',
    help: 'request headers whose values are never logged (replaced by `[redacted]`), in addition to authorization, cookie, proxy-authorization and every header a RequestAuthentication reads a token from' },
  { key: 'logLevel', flag: 'log-level', kind: 'enum', values: ['debug', 'info', 'warn', 'error'], default: 'info', type: 'debug|info|warn|error', help: 'operational log level (stderr)' },
  // --- limits
  { key: 'limits.maxHeaderBytes', flag: 'max-header-bytes', kind: 'size', default: '60KiB', min: 1 * KiB, max: 1 * MiB, type: 'size', help: 'request header bytes before 431' },
  { key: 'limits.maxHeaderCount', flag: 'max-header-count', kind: 'integer', default: '100', min: 1, max: 10_000, workload: true, type: 'integer', help: 'request headers before 431' },
  { key: 'limits.headersTimeout', flag: 'headers-timeout', kind: 'duration', default: '10s', min: 1, max: hour, type: 'duration', help: 'time to receive the complete request head (slowloris)' },
  { key: 'limits.requestTimeout', flag: 'request-timeout', kind: 'duration', default: '300s', min: 1, max: 24 * hour, type: 'duration', help: 'time to receive the whole request' },
  { key: 'limits.bodyTimeout', flag: 'body-timeout', kind: 'duration', default: '30s', min: 1, max: hour, type: 'duration',
    help: 'longest wait for the next request body byte before the workload answers (slow body): 408 and the upstream request aborted' },
  { key: 'limits.idleTimeout', flag: 'idle-timeout', kind: 'duration', default: '1h', min: 1, max: 24 * hour, type: 'duration', help: 'idle connection lifetime' },
  { key: 'limits.tlsHandshakeTimeout', flag: 'tls-handshake-timeout', kind: 'duration', default: '10s', min: 1, max: 120_000, type: 'duration', help: 'TLS handshake deadline' },
  { key: 'limits.h2MaxConcurrentStreams', flag: 'h2-max-concurrent-streams', kind: 'integer', default: '100', min: 1, max: 10_000, type: 'integer', help: 'HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS' },
  { key: 'limits.h2MaxResetsPerSecond', flag: 'h2-max-resets-per-second', kind: 'integer', default: '200', min: 1, max: 100_000, type: 'integer',
    help: 'RST_STREAMs per connection per second before the connection is closed (rapid reset)' },
  { key: 'limits.maxConnections', flag: 'max-connections', kind: 'integer', default: '10000', min: 1, max: 1_000_000, type: 'integer', help: 'concurrent connections per listener' },
  { key: 'limits.upstreamConnectTimeout', flag: 'upstream-connect-timeout', kind: 'duration', default: '5s', min: 1, max: 120_000, type: 'duration', help: 'connect deadline to the workload' },
  { key: 'limits.upstreamTimeout', flag: 'upstream-timeout', kind: 'duration', default: '300s', min: 1, max: 24 * hour, type: 'duration', help: 'wait for the workload\'s response headers, restarted by each request body chunk sent (a gRPC caller\'s `grpc-timeout` is a deadline of its own)' },
  { key: 'limits.drainDelay', flag: 'drain-delay', kind: 'duration', default: '0s', min: 0, max: 600_000, type: 'duration',
    help: 'on SIGTERM, keep accepting new connections this long (with /ready failing) before draining, so endpoints stop sending first (Istio terminationDrainDuration)' },
  { key: 'limits.drainTimeout', flag: 'drain-timeout', kind: 'duration', default: '20s', min: 0, max: hour, type: 'duration', help: 'grace period for in-flight requests on shutdown' },
  { key: 'limits.maxJwtBytes', flag: 'max-jwt-bytes', kind: 'size', default: '8KiB', min: 256, max: 1 * MiB, workload: true, type: 'size', help: 'longest token verified; longer ones are 401' },
  // --- JWKS / JWT
  { key: 'jwks.cacheTtl', flag: 'jwks-cache-ttl', kind: 'duration', default: '10m', min: 1000, max: 24 * hour, type: 'duration', help: 'how long fetched keys are fresh' },
  { key: 'jwks.refreshInterval', flag: 'jwks-refresh-interval', kind: 'duration', default: '5m', min: 1000, max: 24 * hour, type: 'duration', help: 'background refresh period' },
  { key: 'jwks.staleGrace', flag: 'jwks-stale-grace', kind: 'duration', default: '1h', min: 0, max: 7 * 24 * hour, type: 'duration',
    help: 'how long stale keys are served while refreshes fail; afterwards JWT routes fail closed' },
  { key: 'jwks.unknownKidMinInterval', flag: 'jwks-unknown-kid-min-interval', kind: 'duration', default: '10s', min: 0, max: hour, type: 'duration', help: 'minimum time between refetches caused by an unknown `kid`' },
  { key: 'jwks.requireExpiration', flag: 'jwt-require-expiration', kind: 'boolean', default: undefined, workload: true, type: 'boolean',
    help: 'reject tokens without `exp` (401); default by compatibility: secure true, istio-exact false (Istio accepts them)' },
  { key: 'jwks.expirationOptionalIssuers', flag: 'jwt-expiration-optional-issuers', kind: 'stringList', default: '', workload: true, type: 'list of string',
    help: 'issuers whose tokens may lack `exp` even when jwks.requireExpiration is on (per-provider opt-out)' },
  { key: 'jwks.clockSkew', flag: 'jwt-clock-skew', kind: 'duration', default: '60s', min: 0, max: 300_000, workload: true, type: 'duration', help: 'allowed clock skew for exp/nbf/iat' },
];

export function findKeyByFlag(flag: string): KeySpec | undefined {
  return configSchema.find((k) => k.flag === flag);
}

export function findKey(key: string): KeySpec | undefined {
  return configSchema.find((k) => k.key === key);
}

/** Top-level YAML groups holding nested keys (`limits`, `jwks`). */
export const keyGroups: readonly string[] = [...new Set(configSchema.filter((k) => k.key.includes('.')).map((k) => k.key.split('.')[0] as string))];

/** `portcullis run --help`, generated from the schema so it can never drift. */
export function renderRunHelp(): string {
  const lines: string[] = [
    'usage: portcullis run [--config FILE] [flags]',
    '',
    'Runs the sidecar. Settings come from a YAML file (--config) and flags; a flag wins over the file.',
    'Flags have the names of the file keys in kebab-case; list flags repeat or take comma-separated values.',
    'Durations: 500ms, 10s, 5m, 1h. Sizes: 512, 8KiB, 1MiB. Relative paths resolve against the config file.',
    '',
    '  --config FILE                      YAML config file',
  ];
  for (const k of configSchema) {
    const left = `  --${k.flag} ${k.type.includes('|') || k.kind === 'boolean' ? '' : k.type.toUpperCase().replace(/ /g, '_')}`.trimEnd();
    const tail: string[] = [];
    if (k.kind === 'enum' || k.kind === 'decisionLog' || k.kind === 'boolean') tail.push(`(${k.type})`);
    if (k.default !== undefined && k.default !== '') tail.push(`default ${k.default}`);
    if (k.required) tail.push('required');
    lines.push(`${left.padEnd(38)} ${k.help}`);
    lines.push(`${''.padEnd(38)} key: ${k.key}; type: ${k.type}${tail.length ? '; ' + tail.join('; ') : ''}`);
  }
  lines.push('', 'listener fields:');
  for (const f of listenerFields) lines.push(`  ${f.key.padEnd(14)} ${f.required ? '(required) ' : ''}${f.help}`);
  lines.push('', 'outbound fields:');
  for (const f of outboundFields) lines.push(`  ${f.key.padEnd(14)} ${f.required ? '(required) ' : ''}${f.help}`);
  lines.push('', 'Boolean flags take no value (--reject-encoded-slashes) and have a negative form (--no-reject-encoded-slashes).');
  return lines.join('\n') + '\n';
}

/** The key table of docs/configuration.md (a test keeps the document equal to this). */
export function renderConfigurationReference(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = ['| Key | Flag | Type | Default | Meaning |', '|---|---|---|---|---|'];
  for (const k of configSchema) {
    const def = k.required ? '**required**' : k.default === undefined || k.default === '' ? '—' : `\`${k.default}\``;
    rows.push(`| \`${k.key}\` | \`--${k.flag}\` | ${esc(k.type)} | ${esc(def)} | ${esc(k.help)}${k.workload ? ' *(also `check`/`explain`)*' : ''} |`);
  }
  rows.push('', '`listeners[]` fields:', '', '| Field | Required | Meaning |', '|---|---|---|');
  for (const f of listenerFields) rows.push(`| \`${f.key}\` | ${f.required ? 'yes' : 'no'} | ${esc(f.help)} |`);
  rows.push('', '`outbound[]` fields:', '', '| Field | Required | Meaning |', '|---|---|---|');
  for (const f of outboundFields) rows.push(`| \`${f.key}\` | ${f.required ? 'yes' : 'no'} | ${esc(f.help)} |`);
  return rows.join('\n') + '\n';
}
