// Owns the offline decision pipeline behind `portcullis check`, `explain` and the conformance suites:
// request JSON -> context (400) -> JWT (401) -> engine -> rate limit, the same order the data plane uses.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ContextResult, RequestInput, RequestContext, RequestProtocol, PeerIdentity } from '../policy/context-types.js';
import { buildRequestContext } from '../policy/context.js';
import { evaluate } from '../policy/evaluate.js';
import { grpcStatusForHttp, type Decision, type Verdict } from '../policy/decision.js';
import type { PolicySnapshot } from '../policy/ir.js';
import type { LocalRateLimiter } from '../policy/linkerd-rate-limit.js';
import type { JwtAuthenticator } from '../jwt/types.js';
import { createJwtAuthenticator } from '../jwt/authenticator.js';
import { parseSpiffeId, toPeerIdentity } from '../identity/spiffe.js';
import { removeQueryParams } from '../jwt/extract.js';
import { cleanRequestHeaders, groupHeaders, ownedHeaderNames } from '../proxy/headers.js';

/** The request JSON `portcullis check` reads (one object, or one per NDJSON line). */
export interface CheckRequest {
  method?: string;
  /** Raw request target as sent: path, query and all. */
  path?: string;
  host?: string;
  headers?: Record<string, string | string[]>;
  /** SPIFFE ID of an mTLS caller, or null for a plaintext caller. */
  peer?: string | null;
  sourceIp?: string;
  remoteIp?: string;
  destinationIp?: string;
  port?: number;
  sni?: string;
  protocol?: RequestProtocol;
  /** Milliseconds on a logical clock for rate limits in an NDJSON stream (default 0). */
  time?: number;
}

export interface PolicyName {
  dialect: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface CheckOutput {
  verdict: Verdict;
  status: number;
  grpcStatus: number | null;
  audit: { policy: PolicyName; rule: string | null } | null;
  shadow: { verdict: string; action: string; policy: PolicyName | null; rule: string | null } | null;
  policy: PolicyName | null;
  rule: string | null;
  reason: string;
  authorization: string | null;
  /** Response body text for JWT failures (Envoy's wording), else absent. */
  message?: string;
}

/** Input that cannot be decided at all (exit 2), as opposed to a request that is refused. */
export class CheckInputError extends Error {}

export interface DecideDeps {
  authenticator: JwtAuthenticator;
  rateLimiter?: LocalRateLimiter;
}

export interface DecideResult {
  output: CheckOutput;
  /** The context the engine saw (undefined when the request was refused before policy). */
  context: RequestContext | undefined;
  decision: Decision | undefined;
}

export async function decideRequest(snapshot: PolicySnapshot, request: CheckRequest, deps: DecideDeps): Promise<CheckOutput> {
  return (await decideRequestDetailed(snapshot, request, deps)).output;
}

export async function decideRequestDetailed(snapshot: PolicySnapshot, request: CheckRequest, deps: DecideDeps): Promise<DecideResult> {
  const input = toRequestInput(request);
  const isGrpc = input.protocol === 'grpc';
  const contextOptions = { pathNormalization: snapshot.options.pathNormalization, rejectEncodedSlashes: snapshot.options.rejectEncodedSlashes === true };
  // The same header-cleaning step the data plane applies before policy (src/proxy/headers.ts), so a
  // policy on e.g. x-forwarded-client-cert or authorization answers the same in `check` and `run`.
  const ownedNames = ownedHeaderNames(snapshot);
  const grouped = groupHeaders(Object.entries(input.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, x] as const)));
  let cleaned = input.protocol === 'tcp' ? null : cleanRequestHeaders(grouped, { ownedNames });
  if (cleaned && !cleaned.ok) {
    return { output: refused('bad_request', 400, isGrpc, cleaned.refusal.reason), context: undefined, decision: undefined };
  }
  const built: ContextResult = buildRequestContext(cleaned ? { ...input, headers: cleaned.forPolicy } : input, contextOptions);
  if (!built.ok) {
    return { output: refused('bad_request', 400, isGrpc, built.reason), context: undefined, decision: undefined };
  }
  let context = built.context;
  if (input.protocol !== 'tcp') {
    const authn = await deps.authenticator.authenticate({ method: input.method, target: input.path, headers: headerView(grouped) });
    if (authn.kind === 'failed') {
      return { output: { ...refused('unauthenticated', authn.status, isGrpc, authn.reason), message: authn.message }, context, decision: undefined };
    }
    // JWT edits (token removal, claim outputs, query-borne token removal) apply before policy, as in the proxy.
    cleaned = cleanRequestHeaders(grouped, { ownedNames, jwtEdits: authn.edits });
    if (!cleaned.ok) return { output: refused('bad_request', 400, isGrpc, cleaned.refusal.reason), context, decision: undefined };
    const names = authn.edits.removeQueryParams ?? [];
    const rebuilt = buildRequestContext({
      ...input,
      path: names.length > 0 ? removeQueryParams(input.path, names) : input.path,
      headers: cleaned.forPolicy,
      jwt: authn.kind === 'verified' ? authn.jwt : null,
    }, contextOptions);
    if (!rebuilt.ok) return { output: refused('bad_request', 400, isGrpc, rebuilt.reason), context, decision: undefined };
    context = rebuilt.context;
  }
  let decision = evaluate(snapshot, context);
  const limit = decision.effects?.rateLimit;
  if (decision.verdict === 'allow' && limit && deps.rateLimiter) {
    const peerKey = context.peer?.spiffeId ?? '';
    if (!deps.rateLimiter.admit(limit, peerKey, request.time ?? 0)) {
      decision = { ...decision, verdict: 'rate_limited', status: 429, grpcStatus: isGrpc ? 8 : undefined, reason: 'rate_limited' };
    }
  }
  // A redirect filter answers with the redirect whatever `status` says (mixed Istio+Linkerd sets report Istio's 200).
  const redirect = decision.verdict === 'allow' ? decision.effects?.redirect : undefined;
  if (redirect) decision = { ...decision, status: redirect.status, grpcStatus: isGrpc ? 2 : decision.grpcStatus };
  return { output: toOutput(decision, isGrpc), context, decision };
}

function refused(verdict: Verdict, status: number, isGrpc: boolean, reason: string): CheckOutput {
  return {
    verdict, status, grpcStatus: isGrpc ? grpcStatusForHttp(status) : null,
    audit: null, shadow: null, policy: null, rule: null, reason, authorization: null,
  };
}

function toOutput(d: Decision, isGrpc: boolean): CheckOutput {
  const name = (p: { dialect: string; kind: string; namespace: string; name: string } | null): PolicyName | null =>
    p ? { dialect: p.dialect, kind: p.kind, namespace: p.namespace, name: p.name } : null;
  return {
    verdict: d.verdict,
    status: d.status,
    grpcStatus: isGrpc ? (d.grpcStatus ?? grpcStatusForHttp(d.status)) : null,
    audit: d.audit ? { policy: name(d.audit.policy)!, rule: d.audit.rule } : null,
    shadow: d.shadow ? { verdict: d.shadow.verdict, action: d.shadow.action, policy: name(d.shadow.policy), rule: d.shadow.rule } : null,
    policy: name(d.policy),
    rule: d.rule,
    reason: d.reason,
    authorization: d.authorization,
  };
}

export function toRequestInput(request: CheckRequest): RequestInput {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new CheckInputError('a request must be a JSON object');
  }
  const protocol = request.protocol ?? 'http';
  if (protocol !== 'http' && protocol !== 'grpc' && protocol !== 'tcp') {
    throw new CheckInputError(`protocol must be http, grpc or tcp, not ${JSON.stringify(protocol)}`);
  }
  let peer: PeerIdentity | null = null;
  if (request.peer !== undefined && request.peer !== null) {
    const parsed = parseSpiffeId(String(request.peer));
    if (!parsed.ok) throw new CheckInputError(`peer ${JSON.stringify(request.peer)} is not a SPIFFE ID: ${parsed.error}`);
    peer = toPeerIdentity(parsed.id);
  }
  const port = request.port ?? 80;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CheckInputError(`port ${String(port)} is not a port number`);
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(request.headers ?? {})) {
    if (typeof v !== 'string' && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
      throw new CheckInputError(`header ${k} must be a string or a list of strings`);
    }
    headers[k] = v;
  }
  const sourceIp = request.sourceIp ?? '127.0.0.1';
  return {
    protocol,
    method: protocol === 'tcp' ? '' : (request.method ?? (protocol === 'grpc' ? 'POST' : 'GET')),
    path: protocol === 'tcp' ? '' : (request.path ?? '/'),
    host: request.host ?? '',
    headers,
    peer,
    sourceIp,
    remoteIp: request.remoteIp ?? sourceIp,
    destinationIp: request.destinationIp,
    port,
    sni: request.sni,
    jwt: null,
  };
}

/** The JWT authenticator's view: lower-cased names, a repeated header as a list (as the proxy passes it). */
function headerView(grouped: Map<string, string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of grouped) out[name] = values.length === 1 ? (values[0] as string) : values;
  return out;
}

export interface CheckAuthenticatorOptions {
  now: () => number;
  /** `jwksUri` -> local file, so `check` verifies tokens of remote issuers without network. */
  jwksFiles?: Record<string, string>;
}

/** JWT verification for offline use: inline JWKS, file:// URIs, or URIs mapped to files; never the network. */
export function createCheckAuthenticator(snapshot: PolicySnapshot, options: CheckAuthenticatorOptions): JwtAuthenticator {
  const fetchJwks = async (uri: string): Promise<string> => {
    const mapped = options.jwksFiles?.[uri];
    if (mapped !== undefined) return readFile(mapped, 'utf8');
    if (uri.startsWith('file://')) return readFile(fileURLToPath(uri), 'utf8');
    throw new Error(`${uri}: remote JWKS are fetched only by \`portcullis run\`; map it to a file with --jwks ${uri}=FILE`);
  };
  return createJwtAuthenticator(snapshot.jwtProviders, {
    now: options.now,
    fetchJwks,
    clockSkewSeconds: 60,
    requireExpiration: false,
    maxTokenBytes: 8192,
    cacheTtlMs: 600_000,
    refreshIntervalMs: 0,
    staleGraceMs: 0,
    unknownKidMinIntervalMs: 0,
  });
}
