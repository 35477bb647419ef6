// Owns per-document validation for the Calico dialect: the v3 schema, then the API's own admission rules
// (the CEL rules of api/pkg/apis/projectcalico/v3 policy_common.go and globalnetworkpolicy.go) and every selector.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { parseCidrStrict } from '../../match/cidr.js';
import { closest } from '../../suggest.js';
import { Code } from '../../../codes.js';
import { checkShape, shapeDiagnostics, type ShapeProblem } from '../../schema.js';
import { ACTIONS, CALICO_API_VERSION, calicoShapeCodes, isObject, specSchemaFor } from './schema.js';
import { parseSelector, usesGlobal, type SelectorNode } from './selector.js';

type Obj = { [key: string]: JsonValue };
type Report = (code: string, message: string, fieldPath: string) => void;

const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec']);
export const POLICY_KINDS = new Set(['NetworkPolicy', 'GlobalNetworkPolicy', 'StagedNetworkPolicy', 'StagedGlobalNetworkPolicy']);
export const STAGED_KINDS = new Set(['StagedNetworkPolicy', 'StagedGlobalNetworkPolicy']);
export const NAMESPACED = new Set(['NetworkPolicy', 'StagedNetworkPolicy']);

/**
 * A staged policy's `stagedAction` (default `Set`). `Learn` and `Ignore` only tell Calico's policy recommendation
 * whether it may still rewrite the policy; Calico previews them like `Set` (only `Delete` is kept out of its dataplane).
 */
export function stagedActionOf(doc: PolicyDocument): 'Set' | 'Delete' {
  const spec = doc.body.spec;
  return isObject(spec) && spec.stagedAction === 'Delete' ? 'Delete' : 'Set';
}

/** Protocol names Calico accepts (numorstring.Protocol), with their numbers. */
const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132, udplite: 136 };
/** Protocols that have ports: a rule with ports needs one of them. */
const PORT_PROTOCOLS = new Set([6, 17, 132, 136]);

/** A protocol field as its number, or undefined when it is not a protocol. */
export function protocolNumber(v: JsonValue | undefined): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 255 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  if (/^[0-9]+$/.test(v)) return protocolNumber(Number(v));
  return PROTOCOLS[v.toLowerCase()];
}

/** A port entry: a number, `"min:max"` (inclusive), or a named port; undefined when malformed. */
export type PortEntry = { kind: 'range'; min: number; max: number } | { kind: 'name'; name: string };

const PORT_NAME = /^[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$/;

export function parsePort(v: JsonValue | undefined): PortEntry | undefined {
  const inRange = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (typeof v === 'number') return inRange(v) ? { kind: 'range', min: v, max: v } : undefined;
  if (typeof v !== 'string') return undefined;
  const range = /^([0-9]+)(?::([0-9]+))?$/.exec(v);
  if (range) {
    const min = Number(range[1]);
    const max = range[2] === undefined ? min : Number(range[2]);
    return inRange(min) && inRange(max) && min <= max ? { kind: 'range', min, max } : undefined;
  }
  return PORT_NAME.test(v) && /[a-zA-Z]/.test(v) ? { kind: 'name', name: v } : undefined;
}

/** Parses a selector field, reporting a syntax error with the column inside the selector. */
export function checkSelector(value: JsonValue | undefined, path: string, err: Report, globalAllowed = false): SelectorNode | undefined {
  if (typeof value !== 'string') return undefined;
  const r = parseSelector(value);
  if (!r.ok) {
    err(Code.CALICO_BAD_SELECTOR, `invalid selector ${JSON.stringify(value)}: ${r.message} at column ${r.column}`, path);
    return undefined;
  }
  if (!globalAllowed && usesGlobal(r.selector)) err(Code.CALICO_BAD_SELECTOR, 'global() can only be used in an EntityRule namespaceSelector', path);
  return r.selector;
}

export function validateCalicoDocument(doc: PolicyDocument): Diagnostic[] {
  const out: Diagnostic[] = [];
  const err: Report = (code, message, fieldPath) => out.push({ code, severity: 'error', message, origin: doc.locate(fieldPath), fieldPath });
  const warn: Report = (code, message, fieldPath) => out.push({ code, severity: 'warning', message, origin: doc.locate(fieldPath), fieldPath });
  const schema = specSchemaFor(doc.kind);
  if (doc.apiVersion !== CALICO_API_VERSION || !schema) {
    err(Code.CALICO_BAD_VALUE, `${doc.apiVersion} ${doc.kind} is not a Calico resource Portcullis reads (${CALICO_API_VERSION} Tier, NetworkPolicy, GlobalNetworkPolicy and their staged forms)`, 'kind');
    return out;
  }
  for (const key of Object.keys(doc.body)) if (!TOP_LEVEL.has(key)) err(Code.CALICO_UNKNOWN_FIELD, `unknown top-level field ${key}`, key);
  const spec = doc.body.spec ?? {};
  const problems: ShapeProblem[] = [];
  checkShape(spec, schema, 'spec', problems);
  out.push(...shapeDiagnostics(doc, problems, calicoShapeCodes));
  if (out.length > 0 || !isObject(spec)) return out;
  if (!NAMESPACED.has(doc.kind) && doc.metadata.namespace !== undefined) {
    warn(Code.CALICO_BAD_VALUE, `a ${doc.kind} is cluster-wide: metadata.namespace is ignored`, 'metadata.namespace');
  }
  if (doc.kind === 'Tier') return out;
  if (STAGED_KINDS.has(doc.kind) && stagedActionOf(doc) === 'Delete') {
    // validation.go validateStagedNetworkPolicy: a Delete names the policy to remove and carries nothing else.
    for (const key of Object.keys(spec)) {
      if (key !== 'tier' && key !== 'stagedAction' && spec[key] !== null) {
        err(Code.CALICO_FORBIDDEN, `a staged policy with stagedAction Delete only names the policy to delete (and its tier); spec.${key} must be left out`, `spec.${key}`);
      }
    }
    return out;
  }
  validatePolicy(doc, spec, err);
  return out;
}

function validatePolicy(doc: PolicyDocument, spec: Obj, err: Report): void {
  checkSelector(spec.selector, 'spec.selector', err);
  checkSelector(spec.serviceAccountSelector, 'spec.serviceAccountSelector', err);
  checkSelector(spec.namespaceSelector, 'spec.namespaceSelector', err);
  if (typeof spec.tier === 'string' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(spec.tier)) {
    err(Code.CALICO_BAD_VALUE, `spec.tier "${spec.tier}" is not a valid tier name (lower-case letters, digits and -)`, 'spec.tier');
  }
  if (doc.kind.endsWith('GlobalNetworkPolicy')) {
    // globalnetworkpolicy.go CEL rules.
    if (spec.doNotTrack === true && spec.preDNAT === true) err(Code.CALICO_FORBIDDEN, 'preDNAT and doNotTrack cannot both be true', 'spec.preDNAT');
    if (spec.preDNAT === true && Array.isArray(spec.egress) && spec.egress.length > 0) err(Code.CALICO_FORBIDDEN, 'a preDNAT policy cannot have egress rules', 'spec.egress');
    if (spec.preDNAT === true && Array.isArray(spec.types) && spec.types.includes('Egress')) err(Code.CALICO_FORBIDDEN, 'a preDNAT policy cannot have the Egress type', 'spec.types');
    if ((spec.doNotTrack === true || spec.preDNAT === true) && spec.applyOnForward !== true) {
      err(Code.CALICO_FORBIDDEN, 'applyOnForward must be true when preDNAT or doNotTrack is true', 'spec.applyOnForward');
    }
  }
  for (const direction of ['ingress', 'egress'] as const) {
    const list = spec[direction];
    if (!Array.isArray(list)) continue;
    list.forEach((rule, i) => { if (isObject(rule)) validateRule(rule, `spec.${direction}[${i}]`, direction, err); });
  }
}

function validateRule(rule: Obj, at: string, direction: 'ingress' | 'egress', err: Report): void {
  const action = rule.action;
  if (typeof action === 'string' && !(ACTIONS as readonly string[]).includes(action)) {
    const hint = closest(action, ACTIONS, (a) => [a]);
    err(Code.CALICO_BAD_ACTION, `action must be one of Allow, Deny, Log, Pass (got "${action}")${hint ? `; did you mean ${hint}?` : ''}`, `${at}.action`);
  } else if (typeof action !== 'string') {
    err(Code.CALICO_BAD_ACTION, 'action must be one of Allow, Deny, Log, Pass', `${at}.action`);
  }
  const protocol = rule.protocol === undefined || rule.protocol === null ? undefined : protocolNumber(rule.protocol);
  for (const key of ['protocol', 'notProtocol'] as const) {
    const v = rule[key];
    if (v !== undefined && v !== null && protocolNumber(v) === undefined) {
      err(Code.CALICO_BAD_PROTOCOL, `${key} must be TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255 (got ${JSON.stringify(v)})`, `${at}.${key}`);
    }
  }
  const notProtocol = rule.notProtocol === undefined || rule.notProtocol === null ? undefined : protocolNumber(rule.notProtocol);
  const ipVersion = typeof rule.ipVersion === 'number' ? rule.ipVersion : undefined;
  // policy_common.go CEL rules on a Rule.
  if (isObject(rule.icmp) && protocol !== 1 && protocol !== 58) err(Code.CALICO_FORBIDDEN, 'icmp requires protocol ICMP or ICMPv6', `${at}.icmp`);
  if (isObject(rule.notICMP) && protocol !== 1 && protocol !== 58) err(Code.CALICO_FORBIDDEN, 'notICMP requires protocol ICMP or ICMPv6', `${at}.notICMP`);
  for (const key of ['icmp', 'notICMP'] as const) {
    const f = rule[key];
    if (isObject(f) && f.code !== undefined && f.code !== null && (f.type === undefined || f.type === null)) err(Code.CALICO_FORBIDDEN, 'an ICMP code needs an ICMP type', `${at}.${key}.code`);
  }
  for (const [key, p] of [['protocol', protocol], ['notProtocol', notProtocol]] as const) {
    if (p === 1 && ipVersion !== undefined && ipVersion !== 4) err(Code.CALICO_FORBIDDEN, 'protocol ICMP requires ipVersion 4', `${at}.${key}`);
    if (p === 58 && ipVersion !== undefined && ipVersion !== 6) err(Code.CALICO_FORBIDDEN, 'protocol ICMPv6 requires ipVersion 6', `${at}.${key}`);
  }
  const http = rule.http;
  if (isObject(http)) {
    if (action !== 'Allow') err(Code.CALICO_FORBIDDEN, 'an HTTP match is only valid on Allow rules', `${at}.http`);
    if (protocol !== undefined && protocol !== 6) err(Code.CALICO_FORBIDDEN, 'rules with an HTTP match must have protocol TCP or none', `${at}.protocol`);
    const paths = Array.isArray(http.paths) ? http.paths : [];
    paths.forEach((p, i) => {
      if (!isObject(p)) return;
      const exact = typeof p.exact === 'string' && p.exact !== '';
      const prefix = typeof p.prefix === 'string' && p.prefix !== '';
      if (exact === prefix) err(Code.CALICO_FORBIDDEN, 'each HTTP path needs exactly one of exact or prefix', `${at}.http.paths[${i}]`);
    });
    const methods = Array.isArray(http.methods) ? http.methods : [];
    methods.forEach((m, i) => { if (m === '') err(Code.CALICO_BAD_VALUE, 'an HTTP method must not be empty', `${at}.http.methods[${i}]`); });
  }
  for (const side of ['source', 'destination'] as const) {
    const e = rule[side];
    if (isObject(e)) validateEntityRule(e, `${at}.${side}`, side, direction, protocol, ipVersion, err);
  }
}

function validateEntityRule(e: Obj, at: string, side: 'source' | 'destination', direction: 'ingress' | 'egress', protocol: number | undefined, ipVersion: number | undefined, err: Report): void {
  checkSelector(e.selector, `${at}.selector`, err);
  checkSelector(e.notSelector, `${at}.notSelector`, err);
  checkSelector(e.namespaceSelector, `${at}.namespaceSelector`, err, true);
  if (isObject(e.serviceAccounts)) checkSelector(e.serviceAccounts.selector, `${at}.serviceAccounts.selector`, err);
  for (const key of ['nets', 'notNets'] as const) {
    const list = Array.isArray(e[key]) ? e[key] : [];
    list.forEach((n, i) => {
      const cidr = typeof n === 'string' ? parseCidrStrict(n) : null;
      if (!cidr) { err(Code.CALICO_BAD_CIDR, `${JSON.stringify(n)} is not an IP address or CIDR`, `${at}.${key}[${i}]`); return; }
      if (ipVersion !== undefined && cidr.family !== ipVersion) err(Code.CALICO_FORBIDDEN, `${String(n)} is not an IPv${ipVersion} network, but the rule has ipVersion ${ipVersion}`, `${at}.${key}[${i}]`);
    });
  }
  for (const key of ['ports', 'notPorts'] as const) {
    const list = Array.isArray(e[key]) ? e[key] : [];
    list.forEach((p, i) => {
      if (parsePort(p) === undefined) err(Code.CALICO_BAD_PORT, `${JSON.stringify(p)} is not a port, a range "min:max" (0-65535) or a port name`, `${at}.${key}[${i}]`);
    });
    if (list.length > 0 && (protocol === undefined || !PORT_PROTOCOLS.has(protocol))) {
      err(Code.CALICO_FORBIDDEN, `${key} need the rule's protocol to be TCP, UDP, SCTP or UDPLite`, `${at}.${key}`);
    }
  }
  const services = e.services;
  if (isObject(services)) {
    const nonEmpty = (v: JsonValue | undefined) => (Array.isArray(v) ? v.length > 0 : typeof v === 'string' ? v !== '' : v !== undefined && v !== null);
    if (typeof services.name !== 'string' || services.name === '') err(Code.CALICO_MISSING_FIELD, 'services must name a service', `${at}.services.name`);
    for (const other of ['selector', 'notSelector', 'namespaceSelector', 'nets', 'notNets', 'serviceAccounts'] as const) {
      if (nonEmpty(e[other])) err(Code.CALICO_FORBIDDEN, `services cannot be combined with ${other} in one entity rule`, `${at}.${other}`);
    }
    // Ports with services are allowed only on the source of an ingress rule (EntityRule.Services doc).
    if ((side === 'destination' || direction === 'egress') && (nonEmpty(e.ports) || nonEmpty(e.notPorts))) {
      err(Code.CALICO_FORBIDDEN, 'ports and notPorts cannot be combined with services here', `${at}.services`);
    }
  }
}
