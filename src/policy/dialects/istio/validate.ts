// Owns Istio document validation: the strict schema plus every rule istiod's webhook enforces, and the
// warnings istiod prints. Follows istio/istio pkg/config/validation (ValidateAuthorizationPolicy, ...).

import type { Diagnostic, Severity } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { checkShape, shapeDiagnostics, type ShapeProblem } from '../../schema.js';
import { classifyConditionKey, isObj, lowerRule, removedConditionKeys, strings } from './rules.js';
import { authorizationPolicyShape, istioShapeCodes, requestAuthenticationShape } from './schema.js';
import {
  hasMidStar, isHeaderToken, isStrictHeaderName, isValidIpOrCidr, parseGoBool, parseGoDuration, parsePort, pathTemplateError,
} from './strings.js';
import { Code } from '../../../codes.js';

export const ISTIO_GROUP = 'security.istio.io/';
export const SUPPORTED_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'];
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];
const MAX_SERVICE_ACCOUNTS = 16;

class Reporter {
  readonly out: Diagnostic[] = [];
  constructor(private readonly doc: PolicyDocument) {}
  add(code: string, severity: Severity, fieldPath: string, message: string): void {
    this.out.push({ code, severity, message, origin: this.doc.locate(fieldPath), fieldPath });
  }
  error(code: string, fieldPath: string, message: string): void { this.add(code, 'error', fieldPath, message); }
  warn(code: string, fieldPath: string, message: string): void { this.add(code, 'warning', fieldPath, message); }
}

/** `istio.io/dry-run` as Istio reads it: Go ParseBool; unparsable = enforced (with a warning at validation). */
export function isDryRun(doc: PolicyDocument): boolean {
  const v = doc.metadata.annotations[DRY_RUN_ANNOTATION];
  return v !== undefined && parseGoBool(v) === true;
}

export function validateIstioDocument(doc: PolicyDocument): Diagnostic[] {
  const r = new Reporter(doc);
  if (!SUPPORTED_VERSIONS.includes(doc.apiVersion)) {
    r.error(Code.ISTIO_UNSUPPORTED_VERSION, 'apiVersion', `${doc.apiVersion} is not served; use security.istio.io/v1 (or v1beta1)`);
    return r.out;
  }
  if (doc.kind === 'PeerAuthentication') {
    r.warn(Code.ISTIO_NOT_ENFORCED, 'kind', 'PeerAuthentication is not enforced by Portcullis (mTLS is always required by its listener configuration); document ignored');
    return r.out;
  }
  if (doc.kind !== 'AuthorizationPolicy' && doc.kind !== 'RequestAuthentication') {
    r.error(Code.ISTIO_UNKNOWN_KIND, 'kind', `unknown kind ${doc.kind} in ${doc.apiVersion}; expected AuthorizationPolicy or RequestAuthentication`);
    return r.out;
  }
  const problems: ShapeProblem[] = [];
  checkShape(doc.body, doc.kind === 'AuthorizationPolicy' ? authorizationPolicyShape : requestAuthenticationShape, '', problems, { nulls: 'report' });
  r.out.push(...shapeDiagnostics(doc, problems, istioShapeCodes));

  if (doc.metadata.namespace === undefined) {
    r.warn(Code.ISTIO_NO_NAMESPACE, 'metadata', 'metadata.namespace is not set; treated as namespace "default" (as kubectl apply without -n would)');
  }
  const dryRun = doc.metadata.annotations[DRY_RUN_ANNOTATION];
  if (dryRun !== undefined && parseGoBool(dryRun) === undefined) {
    r.warn(Code.ISTIO_BAD_DRY_RUN, `metadata.annotations[${DRY_RUN_ANNOTATION}]`, `annotation ${DRY_RUN_ANNOTATION}: "${dryRun}" is not a boolean; the policy is ENFORCED (treated as false, as Istio does)`);
  }
  const spec = isObj(doc.body.spec) ? doc.body.spec : {};
  checkTargeting(spec, r);
  if (doc.kind === 'AuthorizationPolicy') validateAuthorizationPolicy(spec, doc, r);
  else validateRequestAuthentication(spec, r);
  return r.out;
}

function checkTargeting(spec: { [k: string]: JsonValue }, r: Reporter): void {
  const hasTarget = spec.targetRef !== undefined || spec.targetRefs !== undefined;
  if (spec.selector !== undefined && spec.selector !== null && hasTarget) {
    r.error(Code.ISTIO_SELECTOR_WITH_TARGETREF, 'spec.selector', 'selector and targetRef/targetRefs are mutually exclusive');
  }
  if (spec.targetRef !== undefined && spec.targetRefs !== undefined) {
    r.error(Code.ISTIO_SELECTOR_WITH_TARGETREF, 'spec.targetRefs', 'targetRef and targetRefs are mutually exclusive');
  }
}

// --- AuthorizationPolicy -------------------------------------------------------------------------

function validateAuthorizationPolicy(spec: { [k: string]: JsonValue }, doc: PolicyDocument, r: Reporter): void {
  const action = typeof spec.action === 'string' ? spec.action : 'ALLOW';
  if (!ACTIONS.includes(action)) {
    r.error(Code.ISTIO_BAD_ACTION, 'spec.action', `action "${action}" is not one of ${ACTIONS.join(', ')}`);
  }
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  if (rules.length === 0 && (action === 'DENY' || action === 'CUSTOM')) {
    r.error(Code.ISTIO_NO_RULES, 'spec', `${action} policy without rules is meaningless (it never matches); add an empty rule "rules: [{}]" to match every request`);
  }
  if (rules.length === 0 && action === 'AUDIT') {
    r.warn(Code.ISTIO_NO_RULES, 'spec', 'AUDIT policy without rules never matches');
  }
  const provider = isObj(spec.provider) ? spec.provider : undefined;
  if (action === 'CUSTOM' && (!provider || typeof provider.name !== 'string' || provider.name === '')) {
    r.error(Code.ISTIO_CUSTOM_NO_PROVIDER, 'spec.provider', 'CUSTOM action requires provider.name');
  }
  if (action !== 'CUSTOM' && spec.provider !== undefined && spec.provider !== null) {
    r.error(Code.ISTIO_PROVIDER_NOT_CUSTOM, 'spec.provider', `provider may only be used with action CUSTOM (action is ${action})`);
  }
  const policyNamespace = doc.metadata.namespace ?? 'default';
  rules.forEach((rule, i) => validateRule(rule, `spec.rules[${i}]`, action, policyNamespace, r));
}

function validateRule(rule: JsonValue, path: string, action: string, policyNamespace: string, r: Reporter): void {
  if (!isObj(rule)) return;
  if (Array.isArray(rule.from)) {
    if (rule.from.length === 0) r.error(Code.ISTIO_EMPTY_LIST, `${path}.from`, '`from` must not be an empty list (omit it to match any source)');
    rule.from.forEach((f, j) => {
      const at = `${path}.from[${j}]`;
      if (!isObj(f)) return;
      if (!isObj(f.source)) {
        if (f.source === undefined) r.error(Code.ISTIO_MISSING_FIELD, at, '`from` entry must have a `source`');
        return;
      }
      validateSource(f.source, `${at}.source`, action, policyNamespace, r);
    });
  }
  if (Array.isArray(rule.to)) {
    if (rule.to.length === 0) r.error(Code.ISTIO_EMPTY_LIST, `${path}.to`, '`to` must not be an empty list (omit it to match any operation)');
    rule.to.forEach((t, j) => {
      const at = `${path}.to[${j}]`;
      if (!isObj(t)) return;
      if (!isObj(t.operation)) {
        if (t.operation === undefined) r.error(Code.ISTIO_MISSING_FIELD, at, '`to` entry must have an `operation`');
        return;
      }
      validateOperation(t.operation, `${at}.operation`, r);
    });
  }
  if (Array.isArray(rule.when)) {
    if (rule.when.length === 0) r.warn(Code.ISTIO_EMPTY_LIST, `${path}.when`, '`when: []` has no conditions');
    rule.when.forEach((c, k) => validateCondition(c, `${path}.when[${k}]`, action, policyNamespace, r));
  }

  // Warnings istiod prints, and the plaintext corner of the absent-attribute rule (security bulletin 2021-004).
  const env = { policyNamespace, trustDomains: ['cluster.local'] };
  if (action === 'DENY' || action === 'AUDIT' || action === 'CUSTOM') {
    const http = lowerRule(rule, env, { tcp: false, action: 'DENY' });
    const tcp = lowerRule(rule, env, { tcp: true, action: 'DENY' });
    if (tcp?.type === 'any' && http?.type !== 'any') {
      r.warn(Code.ISTIO_HTTP_ONLY_ON_TCP, path, `${action} rule uses only HTTP attributes on some branch: it will ${action === 'AUDIT' ? 'audit' : 'deny'} ALL traffic to TCP ports of the workload`);
    }
  }
  if (action === 'ALLOW' && Array.isArray(rule.from)) {
    rule.from.forEach((f, j) => {
      if (!isObj(f) || !isObj(f.source)) return;
      for (const field of ['notPrincipals', 'notNamespaces', 'notServiceAccounts', 'notRequestPrincipals']) {
        if (strings(f.source[field]).length > 0) {
          r.warn(Code.ISTIO_ALLOW_NEGATIVE_SOURCE, `${path}.from[${j}].source.${field}`,
            `ALLOW with ${field} also admits callers without ${field === 'notRequestPrincipals' ? 'a token' : 'an mTLS identity (plaintext)'}; pair it with a positive field such as ${field === 'notRequestPrincipals' ? 'requestPrincipals: ["*"]' : 'principals: ["*"]'}`);
        }
      }
    });
  }
}

function checkStrings(values: JsonValue | undefined, path: string, r: Reporter): string[] {
  if (!Array.isArray(values)) return [];
  values.forEach((v, i) => {
    if (v === '') r.error(Code.ISTIO_EMPTY_STRING, `${path}[${i}]`, `${path}[${i}] is an empty string`);
  });
  return strings(values);
}

function checkIps(values: JsonValue | undefined, path: string, r: Reporter): void {
  checkStrings(values, path, r).forEach((v, i) => {
    if (v !== '' && !isValidIpOrCidr(v)) r.error(Code.ISTIO_BAD_IP, `${path}[${i}]`, `"${v}" is not an IP address or CIDR range`);
  });
}

function warnMidStar(values: string[], path: string, r: Reporter): void {
  values.forEach((v, i) => {
    if (hasMidStar(v)) r.warn(Code.ISTIO_LITERAL_STAR, `${path}[${i}]`, `"${v}": a '*' in the middle is matched literally (only a leading or trailing '*' is a wildcard)`);
  });
}

function checkServiceAccount(v: string, path: string, r: Reporter): void {
  if (v === '') return;
  const parts = v.split('/');
  if (v.includes('*')) r.error(Code.ISTIO_BAD_SERVICE_ACCOUNT, path, `"${v}": service accounts do not support '*'`);
  else if (parts.length > 2 || parts.some((p) => p === '')) r.error(Code.ISTIO_BAD_SERVICE_ACCOUNT, path, `"${v}" must be "<namespace>/<serviceaccount>" or "<serviceaccount>"`);
}

const SOURCE_LISTS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts',
  'trustDomains', 'notTrustDomains',
];

function validateSource(src: { [k: string]: JsonValue }, path: string, _action: string, _ns: string, r: Reporter): void {
  if (SOURCE_LISTS.every((f) => strings(src[f]).length === 0)) {
    r.error(Code.ISTIO_EMPTY_SOURCE, path, '`source` must set at least one field (omit `from` to match any source)');
  }
  for (const f of SOURCE_LISTS) checkStrings(src[f], `${path}.${f}`, r);
  for (const f of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) checkIps(src[f], `${path}.${f}`, r);
  for (const f of ['principals', 'notPrincipals']) {
    const values = strings(src[f]);
    values.forEach((v, i) => {
      if (v.startsWith('spiffe://')) r.warn(Code.ISTIO_SPIFFE_PREFIX, `${path}.${f}[${i}]`, `"${v}": principals are written without "spiffe://"; this entry can never match`);
    });
    warnMidStar(values, `${path}.${f}`, r);
  }
  for (const f of ['requestPrincipals', 'notRequestPrincipals']) warnMidStar(strings(src[f]), `${path}.${f}`, r);
  for (const f of ['serviceAccounts', 'notServiceAccounts']) {
    const values = strings(src[f]);
    if (values.length > MAX_SERVICE_ACCOUNTS) r.error(Code.ISTIO_TOO_MANY_SERVICE_ACCOUNTS, `${path}.${f}`, `${f} has ${values.length} entries; at most ${MAX_SERVICE_ACCOUNTS} are allowed`);
    values.forEach((v, i) => checkServiceAccount(v, `${path}.${f}[${i}]`, r));
  }
  const hasSa = strings(src.serviceAccounts).length + strings(src.notServiceAccounts).length > 0;
  const hasIdentity = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some((f) => strings(src[f]).length > 0);
  if (hasSa && hasIdentity) {
    r.error(Code.ISTIO_SERVICE_ACCOUNTS_CONFLICT, path, 'serviceAccounts/notServiceAccounts cannot be combined with principals or namespaces in the same source');
  }
  for (const f of ['trustDomains', 'notTrustDomains']) {
    strings(src[f]).forEach((v, i) => {
      if (hasMidStar(v)) r.error(Code.ISTIO_BAD_TRUST_DOMAIN, `${path}.${f}[${i}]`, `"${v}": '*' is only allowed at the start or end of a trust domain`);
    });
  }
}

const OPERATION_LISTS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];

function validateOperation(op: { [k: string]: JsonValue }, path: string, r: Reporter): void {
  if (OPERATION_LISTS.every((f) => strings(op[f]).length === 0)) {
    r.error(Code.ISTIO_EMPTY_OPERATION, path, '`operation` must set at least one field (omit `to` to match any operation)');
  }
  for (const f of OPERATION_LISTS) checkStrings(op[f], `${path}.${f}`, r);
  for (const f of ['ports', 'notPorts']) {
    strings(op[f]).forEach((v, i) => {
      if (v !== '' && parsePort(v) === undefined) r.error(Code.ISTIO_BAD_PORT, `${path}.${f}[${i}]`, `"${v}" is not a port (decimal 0-65535)`);
    });
  }
  for (const f of ['paths', 'notPaths']) {
    strings(op[f]).forEach((v, i) => {
      const err = v === '' ? undefined : pathTemplateError(v);
      if (err) r.error(Code.ISTIO_BAD_PATH_TEMPLATE, `${path}.${f}[${i}]`, err);
    });
    warnMidStar(strings(op[f]).filter((v) => !v.includes('{')), `${path}.${f}`, r);
  }
  for (const f of ['methods', 'notMethods']) {
    const values = strings(op[f]);
    values.forEach((v, i) => {
      if (v !== '*' && v !== v.toUpperCase()) r.warn(Code.ISTIO_METHOD_CASE, `${path}.${f}[${i}]`, `"${v}": methods are case-sensitive and HTTP methods are upper-case; this entry never matches a valid request`);
    });
    warnMidStar(values, `${path}.${f}`, r);
  }
  for (const f of ['hosts', 'notHosts']) warnMidStar(strings(op[f]), `${path}.${f}`, r);
}

function validateCondition(c: JsonValue, path: string, _action: string, _ns: string, r: Reporter): void {
  if (!isObj(c)) return;
  const key = typeof c.key === 'string' ? c.key : '';
  if (key === '') {
    if (c.key === undefined || c.key === '') r.error(Code.ISTIO_MISSING_FIELD, `${path}.key`, '`when` condition must have a key');
    return;
  }
  const values = checkStrings(c.values, `${path}.values`, r);
  const notValues = checkStrings(c.notValues, `${path}.notValues`, r);
  if (values.length === 0 && notValues.length === 0) {
    r.error(Code.ISTIO_CONDITION_NO_VALUES, path, `condition "${key}" must set values or notValues`);
  }
  if (removedConditionKeys.some((k) => key === k || (k.endsWith('[') && key.startsWith(k)))) {
    r.error(Code.ISTIO_REMOVED_CONDITION_KEY, `${path}.key`, `condition key "${key}" is no longer supported by Istio`);
    return;
  }
  const kind = classifyConditionKey(key);
  if (!kind) {
    r.error(Code.ISTIO_UNKNOWN_CONDITION_KEY, `${path}.key`, `unknown condition key "${key}" (see https://istio.io/latest/docs/reference/config/security/conditions/)`);
    return;
  }
  const all: [string, string[]][] = [['values', values], ['notValues', notValues]];
  for (const [field, list] of all) {
    list.forEach((v, i) => {
      const at = `${path}.${field}[${i}]`;
      if (v === '') return;
      if (kind.kind === 'simple' && ['source.ip', 'remote.ip', 'destination.ip'].includes(kind.key) && !isValidIpOrCidr(v)) {
        r.error(Code.ISTIO_BAD_IP, at, `"${v}" is not an IP address or CIDR range`);
      }
      if (kind.kind === 'simple' && kind.key === 'destination.port' && parsePort(v) === undefined) {
        r.error(Code.ISTIO_BAD_PORT, at, `"${v}" is not a port (decimal 0-65535)`);
      }
      if (kind.kind === 'simple' && kind.key === 'source.serviceAccount') checkServiceAccount(v, at, r);
      if (kind.kind === 'simple' && kind.key === 'source.trustDomain' && hasMidStar(v)) {
        r.error(Code.ISTIO_BAD_TRUST_DOMAIN, at, `"${v}": '*' is only allowed at the start or end of a trust domain`);
      }
      if (kind.kind === 'simple' && kind.key === 'source.principal' && v.startsWith('spiffe://')) {
        r.warn(Code.ISTIO_SPIFFE_PREFIX, at, `"${v}": principals are written without "spiffe://"; this value can never match`);
      }
    });
  }
  if (kind.kind === 'claim' && kind.path.some((p) => /^["'].*["']$/.test(p))) {
    r.warn(Code.ISTIO_QUOTED_CLAIM, `${path}.key`, `"${key}": claim names are not quoted; this looks for a claim whose name includes the quotes`);
  }
  if (kind.kind === 'experimental') {
    r.warn(Code.ISTIO_UNSUPPORTED_KEY, `${path}.key`, `"${key}" reads Envoy filter metadata, which Portcullis does not have: its values never match (notValues always match)`);
  }
}

// --- RequestAuthentication -----------------------------------------------------------------------

function validateRequestAuthentication(spec: { [k: string]: JsonValue }, r: Reporter): void {
  const rules = Array.isArray(spec.jwtRules) ? spec.jwtRules : [];
  rules.forEach((rule, i) => {
    const path = `spec.jwtRules[${i}]`;
    if (!isObj(rule)) return;
    const issuer = typeof rule.issuer === 'string' ? rule.issuer : '';
    const jwksUri = typeof rule.jwksUri === 'string' ? rule.jwksUri : '';
    const jwks = typeof rule.jwks === 'string' ? rule.jwks : '';
    if (issuer === '' && jwksUri === '') r.error(Code.ISTIO_JWT_NO_ISSUER, `${path}.issuer`, 'issuer is required (unless jwksUri is given)');
    if (jwks !== '' && jwksUri !== '') r.error(Code.ISTIO_JWT_JWKS_CONFLICT, `${path}.jwks`, 'jwks and jwksUri are mutually exclusive');
    if (jwks !== '') {
      const err = jwksError(jwks);
      if (err) r.error(Code.ISTIO_JWT_BAD_JWKS, `${path}.jwks`, err);
    }
    if (jwksUri !== '' && !/^(https:\/\/[^/?#]+|file:\/\/)/.test(jwksUri)) {
      r.error(Code.ISTIO_JWT_BAD_JWKS_URI, `${path}.jwksUri`, `jwksUri "${jwksUri}" must be an https:// URL (or file:/// for a local key set)`);
    }
    if (jwks === '' && jwksUri === '' && issuer !== '') {
      r.warn(Code.ISTIO_JWT_NO_JWKS, path, `no jwks or jwksUri for issuer "${issuer}": Portcullis does not do OIDC discovery, so every token of this issuer is rejected (401)`);
    }
    for (const f of ['audiences', 'fromParams', 'fromCookies', 'spaceDelimitedClaims']) checkStrings(rule[f], `${path}.${f}`, r);
    if (Array.isArray(rule.fromHeaders)) {
      rule.fromHeaders.forEach((h, j) => {
        if (!isObj(h)) return;
        const name = typeof h.name === 'string' ? h.name : '';
        if (name === '') r.error(Code.ISTIO_JWT_HEADER_NAME_REQUIRED, `${path}.fromHeaders[${j}]`, 'fromHeaders entry must have a name');
        else if (!isHeaderToken(name)) r.error(Code.ISTIO_BAD_HEADER_NAME, `${path}.fromHeaders[${j}].name`, `"${name}" is not a valid header name`);
      });
    }
    if (typeof rule.outputPayloadToHeader === 'string' && rule.outputPayloadToHeader !== '' && !isStrictHeaderName(rule.outputPayloadToHeader)) {
      r.error(Code.ISTIO_BAD_HEADER_NAME, `${path}.outputPayloadToHeader`, `"${rule.outputPayloadToHeader}" is not a valid header name`);
    }
    if (Array.isArray(rule.outputClaimToHeaders)) {
      const seen = new Set<string>();
      rule.outputClaimToHeaders.forEach((h, j) => {
        if (!isObj(h)) return;
        const at = `${path}.outputClaimToHeaders[${j}]`;
        const header = typeof h.header === 'string' ? h.header : '';
        const claim = typeof h.claim === 'string' ? h.claim : '';
        if (header === '' || claim === '') r.error(Code.ISTIO_JWT_CLAIM_TO_HEADER_INCOMPLETE, at, 'outputClaimToHeaders entry needs both header and claim');
        if (header !== '' && !isStrictHeaderName(header)) r.error(Code.ISTIO_BAD_HEADER_NAME, `${at}.header`, `"${header}" is not a valid header name`);
        if (header !== '' && seen.has(header.toLowerCase())) r.error(Code.ISTIO_JWT_DUPLICATE_HEADER, `${at}.header`, `header "${header}" is set twice`);
        seen.add(header.toLowerCase());
      });
    }
    if (typeof rule.timeout === 'string') {
      const ms = parseGoDuration(rule.timeout);
      if (ms === undefined || ms < 0) r.error(Code.ISTIO_JWT_BAD_TIMEOUT, `${path}.timeout`, `timeout "${rule.timeout}" is not a non-negative duration like "5s" or "1m30s"`);
    }
  });
}

/** A JWKS must be a JSON object with a `keys` list of objects that each name their `kty`. */
function jwksError(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return `jwks is not valid JSON: ${(e as Error).message}`;
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) return 'jwks must be a JSON object with a "keys" list';
  const keys = (parsed as { keys: unknown[] }).keys;
  if (keys.length === 0) return 'jwks has no keys';
  for (const k of keys) {
    if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') return 'every jwks key must be an object with a "kty"';
  }
  return undefined;
}
