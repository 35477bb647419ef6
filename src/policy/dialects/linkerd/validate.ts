// Owns per-document validation for the Linkerd dialect: the CRD schema (unknown fields are errors) plus
// the admission-webhook rules of linkerd2 runtime/src/admission.rs and Gateway API CEL rules we rely on.

import RE2 from 're2';
import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { cidrContainsCidr, parseCidrStrict } from '../../match/cidr.js';
import { checkShape, isObject, shapeDiagnostics, type ShapeProblem } from '../../schema.js';
import { isValidIdentityEntry } from './identity.js';
import { linkerdShapeCodes, specShapeFor } from './schema.js';
import { Code } from '../../../codes.js';

const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateLinkerdDocument(doc: PolicyDocument): Diagnostic[] {
  const out: Diagnostic[] = [];
  const err = (code: string, message: string, fieldPath: string) =>
    out.push({ code, severity: 'error', message, origin: doc.locate(fieldPath), fieldPath });
  const shape = specShapeFor(doc.apiVersion, doc.kind);
  if (!shape) {
    err(Code.LINKERD_UNSUPPORTED_VERSION, `${doc.apiVersion} ${doc.kind} is not a supported Linkerd resource version`, 'apiVersion');
    return out;
  }
  for (const key of Object.keys(doc.body)) if (!TOP_LEVEL.has(key)) err(Code.LINKERD_UNKNOWN_FIELD, `unknown top-level field ${key}`, key);
  const spec = doc.body.spec;
  if (spec === undefined || spec === null) {
    err(Code.LINKERD_MISSING_FIELD, `${doc.kind} needs a spec`, 'spec');
    return out;
  }
  const problems: ShapeProblem[] = [];
  checkShape(spec, shape, 'spec', problems);
  out.push(...shapeDiagnostics(doc, problems, linkerdShapeCodes));
  if (out.length > 0 || !isObject(spec)) return out;
  switch (doc.kind) {
    case 'Server': validateServer(doc, spec, err); break;
    case 'HTTPRoute': validateHttpRoute(spec, err); break;
    case 'GRPCRoute': validateGrpcRoute(spec, err); break;
    case 'AuthorizationPolicy': validateAuthorizationPolicy(doc, spec, err); break;
    case 'MeshTLSAuthentication': validateMeshTls(spec, err); break;
    case 'NetworkAuthentication': validateNetworks(spec.networks, 'spec.networks', err); break;
    case 'ServerAuthorization': validateServerAuthorization(spec, err); break;
    case 'HTTPLocalRateLimitPolicy': validateRateLimit(spec, err); break;
  }
  return out;
}

type Report = (code: string, message: string, fieldPath: string) => void;
type Obj = { [key: string]: JsonValue };

function list(v: JsonValue | undefined): JsonValue[] {
  return Array.isArray(v) ? v : [];
}

function objects(v: JsonValue | undefined): Obj[] {
  return list(v).filter(isObject);
}

function validateServer(doc: PolicyDocument, spec: Obj, err: Report): void {
  const hasPods = spec.podSelector !== undefined && spec.podSelector !== null;
  const hasExternal = spec.externalWorkloadSelector !== undefined && spec.externalWorkloadSelector !== null;
  if (hasPods === hasExternal) {
    const which = doc.apiVersion.endsWith('v1beta2') || doc.apiVersion.endsWith('v1beta3') ? 'exactly one of spec.podSelector or spec.externalWorkloadSelector' : 'spec.podSelector';
    err(Code.LINKERD_SELECTOR, `a Server needs ${which}`, 'spec');
  }
  const port = spec.port;
  if (typeof port === 'number' && (port < 1 || port > 65535)) err(Code.LINKERD_BAD_PORT, `spec.port must be 1-65535 (got ${port})`, 'spec.port');
  if (typeof port === 'string' && (port.length > 15 || !PORT_NAME.test(port))) err(Code.LINKERD_BAD_PORT, `spec.port "${port}" is not a valid port name (IANA_SVC_NAME)`, 'spec.port');
  validateSelector(spec.podSelector, 'spec.podSelector', err);
}

export function validateSelector(sel: JsonValue | undefined, path: string, err: Report): void {
  if (!isObject(sel)) return;
  objects(sel.matchExpressions).forEach((e, i) => {
    const values = list(e.values);
    const op = e.operator;
    if ((op === 'In' || op === 'NotIn') && values.length === 0) err(Code.LINKERD_SELECTOR, `${op} needs at least one value`, `${path}.matchExpressions[${i}].values`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) err(Code.LINKERD_SELECTOR, `${op} takes no values`, `${path}.matchExpressions[${i}].values`);
  });
}

function validateRegex(pattern: string, path: string, err: Report): void {
  try {
    new RE2(pattern, 'u');
  } catch (e) {
    err(Code.LINKERD_BAD_REGEX, `invalid regular expression: ${(e as Error).message}`, path);
  }
}

function validateHeaderMatches(v: JsonValue | undefined, path: string, err: Report): void {
  objects(v).forEach((h, i) => {
    if (h.type === 'RegularExpression' && typeof h.value === 'string') validateRegex(h.value, `${path}[${i}].value`, err);
    if (typeof h.name === 'string' && h.name === '') err(Code.LINKERD_BAD_VALUE, 'a header or query name must not be empty', `${path}[${i}].name`);
  });
}

function validateFilters(v: JsonValue | undefined, path: string, err: Report): void {
  objects(v).forEach((f, i) => {
    const at = `${path}[${i}]`;
    const needs: Record<string, string> = {
      RequestHeaderModifier: 'requestHeaderModifier', ResponseHeaderModifier: 'responseHeaderModifier',
      RequestRedirect: 'requestRedirect', RequestMirror: 'requestMirror', URLRewrite: 'urlRewrite', ExtensionRef: 'extensionRef',
    };
    const field = typeof f.type === 'string' ? needs[f.type] : undefined;
    if (field && (f[field] === undefined || f[field] === null)) err(Code.LINKERD_MISSING_FIELD, `a ${String(f.type)} filter needs ${field}`, at);
    for (const [type, key] of Object.entries(needs)) {
      if (type !== f.type && f[key] !== undefined) err(Code.LINKERD_BAD_VALUE, `${key} is only allowed with type ${type}`, `${at}.${key}`);
    }
    const redirect = f.requestRedirect;
    if (isObject(redirect)) {
      const code = redirect.statusCode;
      if (code !== undefined && ![301, 302, 303, 307, 308].includes(code as number)) err(Code.LINKERD_BAD_VALUE, 'requestRedirect.statusCode must be 301, 302, 303, 307 or 308', `${at}.requestRedirect.statusCode`);
      const p = redirect.path;
      if (isObject(p)) {
        const key = p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
        if (typeof p[key] !== 'string') err(Code.LINKERD_MISSING_FIELD, `requestRedirect.path of type ${String(p.type)} needs ${key}`, `${at}.requestRedirect.path`);
      }
    }
  });
}

function validateHttpRoute(spec: Obj, err: Report): void {
  objects(spec.rules).forEach((rule, r) => {
    objects(rule.matches).forEach((m, i) => {
      const at = `spec.rules[${r}].matches[${i}]`;
      const path = m.path;
      if (isObject(path)) {
        const type = (path.type as string | undefined) ?? 'PathPrefix';
        const value = (path.value as string | undefined) ?? '/';
        if (type === 'RegularExpression') validateRegex(value, `${at}.path.value`, err);
        else if (!value.startsWith('/')) err(Code.LINKERD_BAD_PATH, `a ${type} path must start with "/" (got "${value}")`, `${at}.path.value`);
      }
      validateHeaderMatches(m.headers, `${at}.headers`, err);
      validateHeaderMatches(m.queryParams, `${at}.queryParams`, err);
    });
    validateFilters(rule.filters, `spec.rules[${r}].filters`, err);
  });
}

function validateGrpcRoute(spec: Obj, err: Report): void {
  objects(spec.rules).forEach((rule, r) => {
    objects(rule.matches).forEach((m, i) => {
      const at = `spec.rules[${r}].matches[${i}]`;
      const method = m.method;
      if (isObject(method) && method.service === undefined && method.method === undefined) err(Code.LINKERD_MISSING_FIELD, 'a gRPC method match needs service or method', `${at}.method`);
      validateHeaderMatches(m.headers, `${at}.headers`, err);
    });
    validateFilters(rule.filters, `spec.rules[${r}].filters`, err);
  });
}

/** Lower-cased group; an omitted group means the core group (""). */
export function groupOf(ref: Obj): string {
  return typeof ref.group === 'string' ? ref.group.toLowerCase() : '';
}

export type TargetKind = 'Server' | 'HTTPRoute:policy.linkerd.io' | 'HTTPRoute:gateway.networking.k8s.io' | 'GRPCRoute' | 'Namespace';

/** linkerd2 inbound/authorization_policy.rs `target`: which targetRefs an AuthorizationPolicy may name. */
export function authorizationTarget(ref: Obj): TargetKind | undefined {
  const group = groupOf(ref);
  const kind = typeof ref.kind === 'string' ? ref.kind.toLowerCase() : '';
  if (group === 'policy.linkerd.io' && kind === 'server') return 'Server';
  if (group === 'policy.linkerd.io' && kind === 'httproute') return 'HTTPRoute:policy.linkerd.io';
  if (group === 'gateway.networking.k8s.io' && kind === 'httproute') return 'HTTPRoute:gateway.networking.k8s.io';
  if (group === 'gateway.networking.k8s.io' && kind === 'grpcroute') return 'GRPCRoute';
  if (group === '' && kind === 'namespace') return 'Namespace';
  return undefined;
}

export type AuthnKind = 'MeshTLSAuthentication' | 'NetworkAuthentication' | 'ServiceAccount';

export function authenticationKind(ref: Obj): AuthnKind | undefined {
  const group = groupOf(ref);
  const kind = typeof ref.kind === 'string' ? ref.kind.toLowerCase() : '';
  if (group === 'policy.linkerd.io' && kind === 'meshtlsauthentication') return 'MeshTLSAuthentication';
  if (group === 'policy.linkerd.io' && kind === 'networkauthentication') return 'NetworkAuthentication';
  if (group === '' && kind === 'serviceaccount') return 'ServiceAccount';
  return undefined;
}

function validateAuthorizationPolicy(doc: PolicyDocument, spec: Obj, err: Report): void {
  const target = isObject(spec.targetRef) ? spec.targetRef : {};
  const kind = authorizationTarget(target);
  if (!kind) {
    err(Code.LINKERD_UNSUPPORTED_TARGET, `targetRef ${String(target.group ?? '')}/${String(target.kind)} is not supported (Server, HTTPRoute, GRPCRoute or Namespace with its API group)`, 'spec.targetRef');
  } else if (kind === 'Namespace' && target.name !== (doc.metadata.namespace ?? 'default')) {
    err(Code.LINKERD_UNSUPPORTED_TARGET, 'a Namespace targetRef must name the policy\'s own namespace', 'spec.targetRef.name');
  }
  const counts: Record<string, number> = {};
  objects(spec.requiredAuthenticationRefs).forEach((ref, i) => {
    const k = authenticationKind(ref);
    if (!k) {
      err(Code.LINKERD_UNSUPPORTED_AUTHN, `requiredAuthenticationRefs kind ${String(ref.group ?? '')}/${String(ref.kind)} is not supported (MeshTLSAuthentication, NetworkAuthentication, ServiceAccount)`, `spec.requiredAuthenticationRefs[${i}]`);
      return;
    }
    counts[k] = (counts[k] ?? 0) + 1;
  });
  const mesh = counts.MeshTLSAuthentication ?? 0;
  const sa = counts.ServiceAccount ?? 0;
  const net = counts.NetworkAuthentication ?? 0;
  if (mesh > 1) err(Code.LINKERD_AUTHN_LIMIT, 'at most one MeshTLSAuthentication may be required', 'spec.requiredAuthenticationRefs');
  if (sa > 1) err(Code.LINKERD_AUTHN_LIMIT, 'at most one ServiceAccount may be required', 'spec.requiredAuthenticationRefs');
  if (mesh > 0 && sa > 0) err(Code.LINKERD_AUTHN_LIMIT, 'a MeshTLSAuthentication and a ServiceAccount cannot both be required', 'spec.requiredAuthenticationRefs');
  if (net > 1) err(Code.LINKERD_AUTHN_LIMIT, 'at most one NetworkAuthentication may be required', 'spec.requiredAuthenticationRefs');
}

function validateMeshTls(spec: Obj, err: Report): void {
  const hasIds = spec.identities !== undefined && spec.identities !== null;
  const hasRefs = spec.identityRefs !== undefined && spec.identityRefs !== null;
  if (hasIds === hasRefs) err(Code.LINKERD_MESHTLS_SHAPE, 'a MeshTLSAuthentication needs exactly one of identities or identityRefs', 'spec');
  list(spec.identities).forEach((id, i) => {
    if (typeof id === 'string' && !isValidIdentityEntry(id)) err(Code.LINKERD_BAD_IDENTITY, `"${id}" is neither a DNS-like identity (with * only as the first label) nor a SPIFFE ID`, `spec.identities[${i}]`);
  });
  objects(spec.identityRefs).forEach((ref, i) => {
    const at = `spec.identityRefs[${i}]`;
    const kind = typeof ref.kind === 'string' ? ref.kind.toLowerCase() : '';
    if (groupOf(ref) !== '' || (kind !== 'serviceaccount' && kind !== 'namespace')) {
      err(Code.LINKERD_UNSUPPORTED_IDENTITY_REF, `identityRefs kind ${String(ref.kind)} is not supported (ServiceAccount or Namespace)`, at);
      return;
    }
    if (typeof ref.name !== 'string' || ref.name === '') err(Code.LINKERD_MISSING_FIELD, `${at}.name is required`, at);
    if (kind === 'namespace' && ref.namespace !== undefined) err(Code.LINKERD_BAD_VALUE, 'a Namespace identityRef must not set namespace', `${at}.namespace`);
  });
}

export function validateNetworks(v: JsonValue | undefined, path: string, err: Report): void {
  objects(v).forEach((n, i) => {
    const at = `${path}[${i}]`;
    const cidr = typeof n.cidr === 'string' ? parseCidrStrict(n.cidr) : null;
    if (!cidr) { err(Code.LINKERD_BAD_CIDR, `"${String(n.cidr)}" is not an IP address or CIDR`, `${at}.cidr`); return; }
    list(n.except).forEach((e, j) => {
      const ex = typeof e === 'string' ? parseCidrStrict(e) : null;
      if (!ex) { err(Code.LINKERD_BAD_CIDR, `"${String(e)}" is not an IP address or CIDR`, `${at}.except[${j}]`); return; }
      if (!cidrContainsCidr(cidr, ex)) err(Code.LINKERD_BAD_CIDR, `except ${String(e)} is not inside cidr ${String(n.cidr)}`, `${at}.except[${j}]`);
      else if (ex.bits === cidr.bits) err(Code.LINKERD_BAD_CIDR, `except ${String(e)} covers the whole cidr ${String(n.cidr)}`, `${at}.except[${j}]`);
    });
  });
}

function validateServerAuthorization(spec: Obj, err: Report): void {
  const server = isObject(spec.server) ? spec.server : {};
  if ((server.name === undefined) === (server.selector === undefined)) err(Code.LINKERD_SERVERAUTHZ_SHAPE, 'spec.server needs exactly one of name or selector', 'spec.server');
  validateSelector(server.selector, 'spec.server.selector', err);
  const client = isObject(spec.client) ? spec.client : {};
  const unauth = client.unauthenticated === true;
  const mesh = isObject(client.meshTLS) ? client.meshTLS : undefined;
  if (unauth === (mesh !== undefined)) err(Code.LINKERD_SERVERAUTHZ_SHAPE, 'spec.client needs exactly one of unauthenticated: true or meshTLS', 'spec.client');
  if (mesh) {
    const forms = [mesh.unauthenticatedTLS === true, mesh.identities !== undefined, mesh.serviceAccounts !== undefined].filter(Boolean).length;
    if (forms !== 1) err(Code.LINKERD_SERVERAUTHZ_SHAPE, 'spec.client.meshTLS needs exactly one of unauthenticatedTLS, identities or serviceAccounts', 'spec.client.meshTLS');
    list(mesh.identities).forEach((id, i) => {
      if (typeof id === 'string' && !isValidIdentityEntry(id)) err(Code.LINKERD_BAD_IDENTITY, `"${id}" is not a valid identity`, `spec.client.meshTLS.identities[${i}]`);
    });
  }
  validateNetworks(client.networks, 'spec.client.networks', err);
}

function validateRateLimit(spec: Obj, err: Report): void {
  const target = isObject(spec.targetRef) ? spec.targetRef : {};
  if (authorizationTarget(target) !== 'Server') err(Code.LINKERD_UNSUPPORTED_TARGET, 'an HTTPLocalRateLimitPolicy must target a policy.linkerd.io Server', 'spec.targetRef');
  const total = isObject(spec.total) ? (spec.total.requestsPerSecond as number) : undefined;
  const identity = isObject(spec.identity) ? (spec.identity.requestsPerSecond as number) : undefined;
  if (total !== undefined && identity !== undefined && identity > total) err(Code.LINKERD_BAD_VALUE, 'identity.requestsPerSecond cannot exceed total.requestsPerSecond', 'spec.identity.requestsPerSecond');
  objects(spec.overrides).forEach((o, i) => {
    if (total !== undefined && typeof o.requestsPerSecond === 'number' && o.requestsPerSecond > total) err(Code.LINKERD_BAD_VALUE, 'an override cannot exceed total.requestsPerSecond', `spec.overrides[${i}].requestsPerSecond`);
    objects(o.clientRefs).forEach((c, j) => {
      if (groupOf(c) !== '' || String(c.kind).toLowerCase() !== 'serviceaccount') err(Code.LINKERD_UNSUPPORTED_IDENTITY_REF, 'clientRefs support only ServiceAccount', `spec.overrides[${i}].clientRefs[${j}]`);
    });
  });
}
