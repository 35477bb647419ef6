// Owns per-document validation of the Kubernetes dialect: the schema, the API server's admission rules
// (k8s.io/kubernetes pkg/apis/networking/validation, the network-policy-api CRD CEL rules), and warnings
// for what a sidecar on the receiving pod cannot enforce (cni-dialects.md §3, §4, §6).

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { cidrContainsCidr, parseCidrStrict } from '../../match/cidr.js';
import { checkShape, isObject, shapeDiagnostics, type ShapeProblem } from '../../schema.js';
import { STAGED_NETWORK_POLICY, ingressPeerShape, kubernetesShapeCodes, specShapeFor, versionsOf } from './schema.js';
import { Code } from '../../../codes.js';

const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
/** IANA_SVC_NAME as Kubernetes validates a named port: 1-15 chars, lower-case alphanumerics and '-', one letter. */
const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Obj = { [key: string]: JsonValue };
type Report = (code: string, message: string, fieldPath: string, severity?: Diagnostic['severity']) => void;

const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
const objects = (v: JsonValue | undefined): Obj[] => list(v).filter(isObject);
const present = (v: JsonValue | undefined): boolean => v !== undefined && v !== null;

export function validateKubernetesDocument(doc: PolicyDocument): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report: Report = (code, message, fieldPath, severity = 'error') =>
    out.push({ code, severity, message, origin: doc.locate(fieldPath), fieldPath });
  const shape = specShapeFor(doc.apiVersion, doc.kind);
  if (!shape) {
    const versions = versionsOf(doc.kind);
    report(Code.K8S_UNSUPPORTED_VERSION, `${doc.apiVersion} ${doc.kind} is not a supported version${versions.length ? ` (supported: ${versions.join(', ')})` : ''}`, 'apiVersion');
    return out;
  }
  for (const key of Object.keys(doc.body)) if (!TOP_LEVEL.has(key)) report(Code.K8S_UNKNOWN_FIELD, `unknown top-level field ${key}`, key);
  const spec = doc.body.spec;
  if (!present(spec)) {
    report(Code.K8S_MISSING_FIELD, `${doc.kind} needs a spec`, 'spec');
    return out;
  }
  const problems: ShapeProblem[] = [];
  checkShape(spec, shape, 'spec', problems);
  out.push(...shapeDiagnostics(doc, problems, kubernetesShapeCodes));
  if (out.some((d) => d.severity === 'error') || !isObject(spec)) return out;
  if (doc.kind === 'NetworkPolicy' || doc.kind === STAGED_NETWORK_POLICY) validateNetworkPolicy(spec, report);
  else validateClusterPolicy(doc, spec, report);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// NetworkPolicy (ValidateNetworkPolicySpec)

function validateNetworkPolicy(spec: Obj, report: Report): void {
  validateSelector(spec.podSelector, 'spec.podSelector', report);
  const types = list(spec.policyTypes);
  if (new Set(types).size !== types.length) report(Code.K8S_BAD_VALUE, 'spec.policyTypes lists a type twice', 'spec.policyTypes');
  objects(spec.ingress).forEach((rule, r) => {
    objects(rule.from).forEach((peer, p) => validateNpPeer(peer, `spec.ingress[${r}].from[${p}]`, report));
    objects(rule.ports).forEach((port, p) => validateNpPort(port, `spec.ingress[${r}].ports[${p}]`, report));
  });
  objects(spec.egress).forEach((rule, r) => {
    objects(rule.to).forEach((peer, p) => validateNpPeer(peer, `spec.egress[${r}].to[${p}]`, report));
    objects(rule.ports).forEach((port, p) => validateNpPort(port, `spec.egress[${r}].ports[${p}]`, report));
  });
  const egressListed = types.includes('Egress') || (types.length === 0 && present(spec.egress));
  if (egressListed) {
    report(Code.K8S_NOT_ENFORCEABLE, 'egress is enforced where traffic leaves the sending pod; a sidecar in front of this workload only sees inbound requests, so these rules are not enforced here', present(spec.egress) ? 'spec.egress' : 'spec.policyTypes', 'warning');
  }
  if (types.length > 0 && !types.includes('Ingress') && present(spec.ingress)) {
    report(Code.K8S_BAD_VALUE, 'spec.ingress is ignored: spec.policyTypes does not list Ingress, so this policy does not isolate or allow inbound traffic', 'spec.ingress', 'warning');
  }
}

function validateNpPeer(peer: Obj, path: string, report: Report): void {
  const selectors = ['podSelector', 'namespaceSelector'].filter((k) => present(peer[k]));
  if (present(peer.ipBlock) && selectors.length > 0) report(Code.K8S_PEER_SHAPE, 'ipBlock may not be combined with podSelector or namespaceSelector in one peer', path);
  if (!present(peer.ipBlock) && selectors.length === 0) report(Code.K8S_PEER_SHAPE, 'a peer must specify podSelector, namespaceSelector or ipBlock', path);
  validateSelector(peer.podSelector, `${path}.podSelector`, report);
  validateSelector(peer.namespaceSelector, `${path}.namespaceSelector`, report);
  if (isObject(peer.ipBlock)) validateIpBlock(peer.ipBlock, `${path}.ipBlock`, report);
}

function validateIpBlock(block: Obj, path: string, report: Report): void {
  // The API server parses both with net.ParseCIDR: an address without a prefix length is refused.
  const cidr = typeof block.cidr === 'string' && block.cidr.includes('/') ? parseCidrStrict(block.cidr) : null;
  if (!cidr) { report(Code.K8S_BAD_CIDR, `ipBlock.cidr ${JSON.stringify(block.cidr)} is not a valid CIDR (address/prefix)`, `${path}.cidr`); return; }
  list(block.except).forEach((e, i) => {
    const at = `${path}.except[${i}]`;
    const inner = typeof e === 'string' && e.includes('/') ? parseCidrStrict(e) : null;
    if (!inner) { report(Code.K8S_BAD_CIDR, `${JSON.stringify(e)} is not a valid CIDR`, at); return; }
    // The API server refuses an except that is not a strict subset of cidr.
    if (!cidrContainsCidr(cidr, inner) || inner.bits <= cidr.bits) report(Code.K8S_BAD_CIDR, `except ${String(e)} must be a strict subset of cidr ${String(block.cidr)}`, at);
  });
}

function validateNpPort(port: Obj, path: string, report: Report): void {
  const p = port.port;
  if (typeof p === 'number' && (p < 1 || p > 65535)) report(Code.K8S_BAD_PORT, `port must be 1-65535 (got ${p})`, `${path}.port`);
  if (typeof p === 'string' && (p.length > 15 || !PORT_NAME.test(p))) report(Code.K8S_BAD_PORT, `port ${JSON.stringify(p)} is neither a number nor a valid port name (IANA_SVC_NAME)`, `${path}.port`);
  if (present(port.endPort)) {
    if (typeof p !== 'number') report(Code.K8S_BAD_PORT, 'endPort needs a numeric port', `${path}.endPort`);
    else if ((port.endPort as number) < p) report(Code.K8S_BAD_PORT, `endPort ${String(port.endPort)} must not be below port ${p}`, `${path}.endPort`);
  }
}

/** matchExpressions operators and their values, as apimachinery's ValidateLabelSelector checks them. */
function validateSelector(sel: JsonValue | undefined, path: string, report: Report): void {
  if (!isObject(sel)) return;
  objects(sel.matchExpressions).forEach((e, i) => {
    const values = list(e.values);
    const op = e.operator;
    if ((op === 'In' || op === 'NotIn') && values.length === 0) report(Code.K8S_SELECTOR, `${String(op)} needs at least one value`, `${path}.matchExpressions[${i}].values`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) report(Code.K8S_SELECTOR, `${String(op)} takes no values`, `${path}.matchExpressions[${i}].values`);
  });
}

// ---------------------------------------------------------------------------------------------------
// ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy (CRD schema + CEL rules)

function exactlyOne(o: Obj, keys: readonly string[], what: string, path: string, report: Report): void {
  const set = keys.filter((k) => present(o[k]));
  if (set.length !== 1) report(Code.K8S_BAD_VALUE, `${what} needs exactly one of ${keys.join(', ')}${set.length > 1 ? ` (got ${set.join(', ')})` : ''}`, path);
}

function validateClusterPolicy(doc: PolicyDocument, spec: Obj, report: Report): void {
  const v1alpha1 = doc.kind !== 'ClusterNetworkPolicy';
  if (doc.metadata.namespace !== undefined) {
    report(Code.K8S_NAMESPACE_IGNORED, `${doc.kind} is cluster-scoped: metadata.namespace is ignored`, 'metadata.namespace', 'warning');
  }
  if (doc.kind === 'BaselineAdminNetworkPolicy' && doc.metadata.name !== 'default') {
    report(Code.K8S_BAD_VALUE, 'a BaselineAdminNetworkPolicy is a singleton named "default"', 'metadata.name');
  }
  if (isObject(spec.subject)) {
    exactlyOne(spec.subject, ['namespaces', 'pods'], 'spec.subject', 'spec.subject', report);
    validateSelectors(spec.subject, 'spec.subject', report);
  }
  objects(spec.ingress).forEach((rule, r) => {
    const at = `spec.ingress[${r}]`;
    if (typeof rule.name === 'string' && rule.name.length > 100) report(Code.K8S_BAD_VALUE, 'a rule name is at most 100 characters', `${at}.name`);
    if (rule.action === 'Allow' && !v1alpha1) {
      report(Code.K8S_ALLOW_ALIAS, 'ClusterNetworkPolicy actions are Accept, Deny and Pass; Allow (the AdminNetworkPolicy spelling) is read as Accept', `${at}.action`, 'warning');
    }
    list(rule.from).forEach((peer, p) => validatePeer(doc, peer, String(rule.action), v1alpha1, `${at}.from[${p}]`, report));
    if (v1alpha1) objects(rule.ports).forEach((port, p) => validateAnpPort(port, `${at}.ports[${p}]`, report));
    else objects(rule.protocols).forEach((proto, p) => validateCnpProtocol(proto, `${at}.protocols[${p}]`, report));
  });
  objects(spec.egress).forEach((rule, r) => {
    const at = `spec.egress[${r}]`;
    if (v1alpha1) objects(rule.ports).forEach((port, p) => validateAnpPort(port, `${at}.ports[${p}]`, report));
    else objects(rule.protocols).forEach((proto, p) => validateCnpProtocol(proto, `${at}.protocols[${p}]`, report));
  });
  if (present(spec.egress)) {
    report(Code.K8S_NOT_ENFORCEABLE, 'egress rules (including networks, nodes and domainNames peers) act where traffic leaves the sending pod; a sidecar in front of this workload only sees inbound requests, so they are not enforced here', 'spec.egress', 'warning');
  }
}

function validateSelectors(o: Obj, path: string, report: Report): void {
  validateSelector(o.namespaces, `${path}.namespaces`, report);
  if (isObject(o.pods)) {
    validateSelector(o.pods.namespaceSelector, `${path}.pods.namespaceSelector`, report);
    validateSelector(o.pods.podSelector, `${path}.pods.podSelector`, report);
  }
}

/**
 * An ingress peer with no field this version knows (a newer CRD's field, or none at all) is not an error:
 * the API asks implementations to fail closed, so the rule matches nothing (Accept) or everything (Deny, Pass).
 */
function validatePeer(doc: PolicyDocument, peer: JsonValue, action: string, v1alpha1: boolean, path: string, report: Report): void {
  if (!isObject(peer)) { report(Code.K8S_WRONG_TYPE, `${path} must be an object`, path); return; }
  const known = ['namespaces', 'pods'].filter((k) => present(peer[k]));
  const unknown = Object.keys(peer).filter((k) => k !== 'namespaces' && k !== 'pods');
  if (known.length > 1 || (known.length === 1 && unknown.length > 0)) {
    report(Code.K8S_BAD_VALUE, `a peer needs exactly one field (got ${[...known, ...unknown].join(', ')})`, path);
    return;
  }
  if (known.length === 0) {
    const effect = action === 'Accept' || action === 'Allow' ? 'this Accept rule matches nothing' : `this ${action} rule denies every connection it could apply to`;
    const what = unknown.length ? `field ${unknown.join(', ')} is not an ingress peer Portcullis knows` : 'the peer sets no field';
    report(Code.K8S_PEER_FAIL_CLOSED, `${what}; failing closed as the API asks: ${effect}`, unknown.length ? `${path}.${unknown[0] as string}` : path, 'warning');
    return;
  }
  const problems: ShapeProblem[] = [];
  checkShape(peer, ingressPeerShape(v1alpha1), path, problems);
  for (const d of shapeDiagnostics(doc, problems, kubernetesShapeCodes)) report(d.code, d.message, d.fieldPath, d.severity);
  validateSelectors(peer, path, report);
}

function validateCnpProtocol(proto: Obj, path: string, report: Report): void {
  exactlyOne(proto, ['tcp', 'udp', 'sctp', 'destinationNamedPort'], 'a protocol', path, report);
  for (const k of ['tcp', 'udp', 'sctp']) {
    const p = proto[k];
    if (!isObject(p)) continue;
    if (!isObject(p.destinationPort)) { report(Code.K8S_MISSING_FIELD, `${k} needs destinationPort`, `${path}.${k}`); continue; }
    exactlyOne(p.destinationPort, ['number', 'range'], 'destinationPort', `${path}.${k}.destinationPort`, report);
    const range = p.destinationPort.range;
    if (isObject(range) && typeof range.start === 'number' && typeof range.end === 'number' && range.start >= range.end) {
      report(Code.K8S_BAD_PORT, 'range start must be less than end', `${path}.${k}.destinationPort.range`);
    }
  }
  if (typeof proto.destinationNamedPort === 'string') checkPortName(proto.destinationNamedPort, `${path}.destinationNamedPort`, report);
}

function validateAnpPort(port: Obj, path: string, report: Report): void {
  exactlyOne(port, ['portNumber', 'namedPort', 'portRange'], 'a port', path, report);
  const range = port.portRange;
  if (isObject(range) && typeof range.start === 'number' && typeof range.end === 'number' && range.start >= range.end) {
    report(Code.K8S_BAD_PORT, 'portRange start must be less than end', `${path}.portRange`);
  }
  if (typeof port.namedPort === 'string') checkPortName(port.namedPort, `${path}.namedPort`, report);
}

function checkPortName(name: string, path: string, report: Report): void {
  if (name.length > 15 || !PORT_NAME.test(name)) report(Code.K8S_BAD_PORT, `${JSON.stringify(name)} is not a valid port name (IANA_SVC_NAME)`, path);
}
