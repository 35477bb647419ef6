// Owns `portcullis check`: compile policies for a workload, decide one request (or an NDJSON stream
// against one compiled set) and print the decision as JSON. Exit 0 for any verdict, 2 for unusable input.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readPolicySources } from '../config/policy-files.js';
import { compilePolicies } from '../policy/compile.js';
import { formatDiagnostic } from '../policy/diagnostics.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { PolicySource } from '../policy/documents-types.js';
import { LocalRateLimiter } from '../policy/linkerd-rate-limit.js';
import { CheckInputError, createCheckAuthenticator, decideRequest, type CheckRequest } from '../check/decide.js';
import { parseWorkloadFlags, workloadFlagsHelp } from './workload-flags.js';
import { parseRequestJson, RequestJsonError } from '../check/request-json.js';
import { Code } from '../codes.js';
import { flagHint } from '../config/flags.js';
import { configSchema } from '../config/schema.js';
import { readPeerFile } from '../config/peer-source.js';
import type { RequestSettings } from '../config/request-settings.js';

export const checkFlagSpec = {
  policies: { type: 'string', multiple: true },
  peers: { type: 'string' },
  request: { type: 'string' },
  requests: { type: 'string' },
  jwks: { type: 'string', multiple: true },
  now: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The peer registry flag check and explain share (validate too). */
export const peersFlagHelp = `  --peers FILE             peer registry (YAML or JSON, docs/cni.md): the labels behind each SPIFFE ID;
                           without it every label-based allow fails closed
`;

/** The JWT flags check and explain share. */
export const jwtFlagsHelp = `  --jwks URI=FILE          verify tokens of a jwksUri issuer against a local JWKS file (repeatable)
  --now TIME               clock for JWT exp/nbf checks (ISO-8601 or ms since epoch; default: now)
`;

const help = `usage: portcullis check --policies PATH [--policies PATH...] (--request FILE|- | --requests FILE.ndjson) [flags]

Decides a request the way the sidecar would and prints one JSON object:
  verdict (allow | deny | unauthenticated | bad_request | not_found | rate_limited), status, grpcStatus,
  audit, shadow, policy {dialect, kind, namespace, name}, tier, rule, reason, authorization, log: true
  when a log rule (Istio AUDIT, Calico Log, Cilium headerMatches actions) recorded the request, and
  headerEdits {remove, set, add} when the forwarded request's headers are edited (Linkerd route filters,
  Cilium headerMatches ADD/DELETE/REPLACE).
  shadow is a result computed and never enforced: Istio dry-run policies (action ALLOW or DENY), or what
  Calico would decide with its staged policies committed (action STAGED); null when none applies.
  tier names the deciding dialect's tier: a Calico tier (default, or a Tier's name; profile for the
  namespace profile's allow); admin, networkpolicy, baseline or default for Kubernetes NetworkPolicy and
  ClusterNetworkPolicy; http or tcp for Istio; inbound for Linkerd; ingress for Cilium. It is null when
  no policy decided (no_policies, a request refused before policy).
The request JSON: method, path (raw target, query included), host, headers (string or string[]),
peer (SPIFFE ID, or null for a plaintext caller), sourceIp, remoteIp, port, sni, protocol (http|grpc|tcp).

  --policies PATH          policy file or directory (repeatable)
${peersFlagHelp}  --request FILE|-         one request as JSON (- reads standard input)
  --requests FILE.ndjson   many requests, one per line, against one compiled set; one decision per line
                           (an optional "time" field in ms drives Linkerd rate limits)
${jwtFlagsHelp}
${workloadFlagsHelp}
Exit 0 for any verdict; 2 for unusable input (diagnostics on stderr).
`;

export interface PreparedCheck {
  snapshot: PolicySnapshot;
  /** The policy files as read, for commands that compile them again (explain's compatibility comparison). */
  sources: PolicySource[];
  now: () => number;
  jwksFiles: Record<string, string>;
  /** Limits and JWT settings from the flags run shares (--max-header-count, --jwt-clock-skew, --max-jwt-bytes). */
  settings: RequestSettings;
  values: ReturnType<typeof parseCheckArgs>['values'];
}

/** Why a --jwks file cannot serve as a key set, or undefined: checked up front, never a 401 at decision time. */
async function jwksFileProblem(file: string): Promise<string | undefined> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) { return `cannot read the JWKS file: ${(e as Error).message}`; }
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) { return `the JWKS file is not JSON: ${(e as Error).message}`; }
  const keys = doc && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys) || keys.length === 0) return 'the JWKS file has no "keys" array with at least one key';
  return undefined;
}

function parseCheckArgs(argv: string[]) {
  return parseArgs({ args: argv, options: checkFlagSpec, allowPositionals: false, strict: true });
}

/** A did-you-mean for an unknown flag among the workload flags and `commandFlags` (or ''). */
export function unknownFlagHint(error: Error, commandFlags: readonly string[]): string {
  const unknown = /Unknown option '(--?[^']+)'/.exec(error.message)?.[1];
  return unknown ? flagHint(unknown.replace(/^-+/, ''), [...configSchema.filter((k) => k.workload), ...commandFlags.map((f) => ({ key: f, flag: f }))]) : '';
}

/**
 * Reads and compiles one policy set for the workload the flags describe (check, explain and replay compile
 * alike). Writes problems to stderr and returns 2 when nothing can be decided with it.
 */
export async function compilePolicySet(command: string, paths: string[], options: CompileOptions): Promise<{ snapshot: PolicySnapshot; sources: PolicySource[] } | number> {
  let sources;
  try {
    sources = await readPolicySources(paths);
  } catch (e) {
    process.stderr.write(`portcullis ${command}: ${(e as Error).message}\n`);
    return 2;
  }
  const { snapshot, diagnostics } = compilePolicies(sources, options);
  // Any error refuses the set, as `run` refuses it: a file that did not parse must never decide as "no policies".
  const refused = !snapshot || diagnostics.some((d) => d.severity === 'error');
  for (const d of diagnostics) if (d.severity === 'error' || refused) process.stderr.write(formatDiagnostic(d) + '\n');
  if (refused) { process.stderr.write(`portcullis ${command}: the policy set has errors; nothing was decided\n`); return 2; }
  return { snapshot, sources };
}

/** Shared by check and explain: parse flags, read and compile policies. Writes problems to stderr. */
export async function prepareCheck(command: string, argv: string[], usage: string): Promise<PreparedCheck | number> {
  const workload = parseWorkloadFlags(argv);
  let parsed;
  try {
    parsed = parseCheckArgs(workload.rest);
  } catch (e) {
    process.stderr.write(`portcullis ${command}: ${(e as Error).message}${unknownFlagHint(e as Error, Object.keys(checkFlagSpec))}\n\n${usage}`);
    return 2;
  }
  const values = parsed.values;
  if (values.help) { process.stdout.write(usage); return 0; }
  if (workload.diagnostics.some((d) => d.severity === 'error')) {
    for (const d of workload.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
    return 2;
  }
  if (!values.policies || values.policies.length === 0) { process.stderr.write(`portcullis ${command}: --policies is required\n\n${usage}`); return 2; }
  let now = () => Date.now();
  if (values.now !== undefined) {
    const t = /^\d+$/.test(values.now) ? Number(values.now) : Date.parse(values.now);
    if (!Number.isFinite(t)) { process.stderr.write(`portcullis ${command}: --now "${values.now}" is not a time\n`); return 2; }
    now = () => t;
  }
  const jwksFiles: Record<string, string> = {};
  for (const item of values.jwks ?? []) {
    const eq = item.lastIndexOf('=');
    if (eq <= 0) { process.stderr.write(`portcullis ${command}: --jwks "${item}" is not URI=FILE\n`); return 2; }
    jwksFiles[item.slice(0, eq)] = item.slice(eq + 1);
    const problem = await jwksFileProblem(item.slice(eq + 1));
    if (problem) { process.stderr.write(`${item.slice(eq + 1)}:1:1 error ${Code.CHECK_JWKS_FILE} ${problem} (--jwks ${item.slice(0, eq)})\n`); return 2; }
  }
  let options = workload.options;
  if (values.peers !== undefined) {
    const peers = await readPeerFile(values.peers);
    for (const d of peers.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
    if (!peers.registry) { process.stderr.write(`portcullis ${command}: the peer registry has errors; nothing was decided\n`); return 2; }
    options = { ...options, peers: peers.registry };
  }
  const compiled = await compilePolicySet(command, values.policies, options);
  if (typeof compiled === 'number') return compiled;
  return { ...compiled, now, jwksFiles, settings: workload.settings, values };
}

export async function readRequestJson(source: string): Promise<unknown> {
  const text = source === '-' ? await readStdin() : await readFile(source, 'utf8');
  return parseRequestJson(text, source === '-' ? '<stdin>' : source);
}

export async function main(argv: string[]): Promise<number> {
  const prepared = await prepareCheck('check', argv, help);
  if (typeof prepared === 'number') return prepared;
  const { snapshot, now, jwksFiles, settings, values } = prepared;
  if ((values.request === undefined) === (values.requests === undefined)) {
    process.stderr.write('portcullis check: give exactly one of --request or --requests\n');
    return 2;
  }
  const authenticator = createCheckAuthenticator(snapshot, { now, jwksFiles, settings });
  const rateLimiter = new LocalRateLimiter();
  try {
    if (values.request !== undefined) {
      const request = await readRequestJson(values.request);
      const out = await decideRequest(snapshot, request as CheckRequest, { authenticator, rateLimiter, limits: settings.limits });
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      return 0;
    }
    const text = values.requests === '-' ? await readStdin() : await readFile(values.requests!, 'utf8');
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '') continue;
      const request = parseRequestJson(line, values.requests === '-' ? '<stdin>' : values.requests!, i);
      try {
        const out = await decideRequest(snapshot, request as CheckRequest, { authenticator, rateLimiter, limits: settings.limits });
        process.stdout.write(JSON.stringify(out) + '\n');
      } catch (e) {
        if (e instanceof CheckInputError) throw new CheckInputError(`${values.requests}:${i + 1}: ${e.message}`);
        throw e;
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof RequestJsonError) { process.stderr.write(`${e.message}\n`); return 2; }
    if (e instanceof CheckInputError || e instanceof SyntaxError || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`portcullis check: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  } finally {
    authenticator.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
