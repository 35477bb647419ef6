// Owns per-document validation of CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy: the CRD schema, the
// agent's admission rules (cilium/cilium pkg/policy/api rule_validation.go, http.go Sanitize) and the warnings
// for every field a per-pod sidecar cannot enforce (cni-dialects.md §1, §6).

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { cidrContainsCidr, parseCidrStrict } from '../../match/cidr.js';
import { checkRegex } from '../../match/regex.js';
import { checkShape, isObject, shapeDiagnostics, type ShapeCodes, type ShapeProblem } from '../../schema.js';
import { Code } from '../../../codes.js';
import { documentShape } from './schema.js';
import { ENTITIES, isClusterwide, parsePortText, rulesOf, type Obj } from './types.js';

const SHAPE_CODES: ShapeCodes = {
  unknown_field: Code.CILIUM_UNKNOWN_FIELD, wrong_type: Code.CILIUM_WRONG_TYPE, null_field: Code.CILIUM_NULL_FIELD,
  bad_value: Code.CILIUM_BAD_VALUE, missing_field: Code.CILIUM_MISSING_FIELD, too_few: Code.CILIUM_TOO_FEW, too_many: Code.CILIUM_TOO_MANY,
};

type Report = (code: string, message: string, fieldPath: string) => void;

const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
const objects = (v: JsonValue | undefined): Obj[] => list(v).filter(isObject);
const nonEmpty = (v: JsonValue | undefined): boolean => Array.isArray(v) && v.length > 0;

const L3_FIELDS = ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromNodes', 'fromGroups'] as const;

export function validateCiliumDocument(doc: PolicyDocument): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (severity: Diagnostic['severity']): Report => (code, message, fieldPath) =>
    out.push({ code, severity, message, origin: doc.locate(fieldPath), fieldPath });
  const err = at('error');
  const warn = at('warning');
  if (doc.apiVersion !== 'cilium.io/v2') {
    err(Code.CILIUM_UNSUPPORTED_VERSION, `${doc.apiVersion} ${doc.kind} is not a supported Cilium policy version (cilium.io/v2)`, 'apiVersion');
    return out;
  }
  const problems: ShapeProblem[] = [];
  checkShape(doc.body, documentShape, '', problems, { nulls: 'report' });
  out.push(...shapeDiagnostics(doc, problems, SHAPE_CODES));
  if (out.some((d) => d.severity === 'error')) return out;

  const rules = rulesOf(doc);
  if (rules.length === 0) err(Code.CILIUM_NO_RULE, `a ${doc.kind} needs spec or specs`, 'spec');
  const clusterwide = isClusterwide(doc);
  for (const { rule, path } of rules) validateRule(rule, path, clusterwide, doc, err, warn);
  return out;
}

function validateRule(rule: Obj, path: string, clusterwide: boolean, doc: PolicyDocument, err: Report, warn: Report): void {
  if (!nonEmpty(rule.ingress) && !nonEmpty(rule.ingressDeny) && !nonEmpty(rule.egress) && !nonEmpty(rule.egressDeny)) {
    // Cilium refuses the rule and enforces nothing; refusing it here keeps "applied" meaning "enforced".
    err(Code.CILIUM_NO_RULE, 'rule must have at least one of ingress, ingressDeny, egress, egressDeny (for default deny write `ingress: [{}]`)', path);
  }
  const hasEndpoints = isObject(rule.endpointSelector);
  const hasNodes = isObject(rule.nodeSelector);
  if (hasEndpoints === hasNodes) err(Code.CILIUM_SELECTOR, 'a rule needs exactly one of endpointSelector or nodeSelector', path);
  if (hasNodes && !clusterwide) err(Code.CILIUM_SELECTOR, 'nodeSelector can only be used in a CiliumClusterwideNetworkPolicy', `${path}.nodeSelector`);
  else if (hasNodes) warn(Code.CILIUM_NOT_ENFORCED, 'nodeSelector selects nodes (a host policy); a pod sidecar is never its subject, so this rule is not enforced here', `${path}.nodeSelector`);
  validateSelector(rule.endpointSelector, `${path}.endpointSelector`, err);
  if (hasEndpoints && !clusterwide) {
    const ns = namespaceMatch(rule.endpointSelector);
    const own = doc.metadata.namespace ?? 'default';
    if (ns !== undefined && ns !== own) {
      warn(Code.CILIUM_NAMESPACE_IGNORED, `a CiliumNetworkPolicy always applies in its own namespace (${own}); the namespace match "${ns}" is replaced, as the Cilium agent does`, `${path}.endpointSelector`);
    }
  }
  for (const dir of ['egress', 'egressDeny'] as const) {
    if (nonEmpty(rule[dir])) {
      const fqdn = objects(rule[dir]).some((e) => e.toFQDNs !== undefined) ? ' (including toFQDNs)' : '';
      warn(Code.CILIUM_NOT_ENFORCED, `${dir}${fqdn} restricts this pod's own outgoing traffic, which an inbound sidecar never sees; not enforced`, `${path}.${dir}`);
    }
  }
  objects(rule.ingress).forEach((r, i) => validateIngress(r, `${path}.ingress[${i}]`, false, err, warn));
  objects(rule.ingressDeny).forEach((r, i) => validateIngress(r, `${path}.ingressDeny[${i}]`, true, err, warn));
}

/** The value of a `matchLabels` namespace key (any source prefix), if the selector names one. */
export function namespaceMatch(sel: JsonValue | undefined): string | undefined {
  if (!isObject(sel) || !isObject(sel.matchLabels)) return undefined;
  for (const [k, v] of Object.entries(sel.matchLabels)) {
    if (k.replace(/^(k8s|any):/, '') === 'io.kubernetes.pod.namespace' && typeof v === 'string') return v;
  }
  return undefined;
}

function validateSelector(sel: JsonValue | undefined, path: string, err: Report): void {
  if (!isObject(sel)) return;
  objects(sel.matchExpressions).forEach((e, i) => {
    const values = list(e.values);
    const op = e.operator;
    if ((op === 'In' || op === 'NotIn') && values.length === 0) err(Code.CILIUM_SELECTOR, `${String(op)} needs at least one value`, `${path}.matchExpressions[${i}].values`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) err(Code.CILIUM_SELECTOR, `${String(op)} takes no values`, `${path}.matchExpressions[${i}].values`);
  });
}

function validateIngress(r: Obj, path: string, deny: boolean, err: Report, warn: Report): void {
  const present = L3_FIELDS.filter((f) => nonEmpty(r[f]));
  if (present.length > 1) err(Code.CILIUM_BAD_VALUE, `combining ${present[0]} and ${present[1]} in one rule is not supported by Cilium; write two rules`, path);
  objects(r.fromEndpoints).forEach((s, i) => validateSelector(s, `${path}.fromEndpoints[${i}]`, err));
  objects(r.fromRequires).forEach((s, i) => validateSelector(s, `${path}.fromRequires[${i}]`, err));
  objects(r.fromNodes).forEach((s, i) => validateSelector(s, `${path}.fromNodes[${i}]`, err));
  list(r.fromEntities).forEach((e, i) => {
    if (typeof e === 'string' && !(ENTITIES as readonly string[]).includes(e)) err(Code.CILIUM_BAD_ENTITY, `unsupported entity "${e}" (known: ${ENTITIES.join(', ')})`, `${path}.fromEntities[${i}]`);
  });
  list(r.fromCIDR).forEach((c, i) => {
    if (typeof c === 'string' && !parseCidrStrict(c)) err(Code.CILIUM_BAD_CIDR, `"${c}" is not an IP address or CIDR`, `${path}.fromCIDR[${i}]`);
  });
  objects(r.fromCIDRSet).forEach((c, i) => validateCidrRule(c, `${path}.fromCIDRSet[${i}]`, err));
  if (nonEmpty(r.icmps) && nonEmpty(r.toPorts)) err(Code.CILIUM_BAD_VALUE, 'icmps cannot be combined with toPorts in one rule', `${path}.icmps`);
  else if (nonEmpty(r.icmps)) warn(Code.CILIUM_NOT_ENFORCED, `ICMP never reaches an HTTP sidecar; this ${deny ? 'deny' : 'allow'} rule matches nothing here`, `${path}.icmps`);
  objects(r.toPorts).forEach((p, i) => validatePortRule(p, `${path}.toPorts[${i}]`, err, warn));
}

function validateCidrRule(c: Obj, path: string, err: Report): void {
  const forms = [c.cidr !== undefined && c.cidr !== '', c.cidrGroupRef !== undefined && c.cidrGroupRef !== '', isObject(c.cidrGroupSelector)].filter(Boolean).length;
  if (forms !== 1) { err(Code.CILIUM_BAD_CIDR, 'a fromCIDRSet entry needs exactly one of cidr, cidrGroupRef or cidrGroupSelector', path); return; }
  if (typeof c.cidr !== 'string') return;
  const cidr = c.cidr.includes('/') ? parseCidrStrict(c.cidr) : null;
  if (!cidr) { err(Code.CILIUM_BAD_CIDR, `"${c.cidr}" is not a CIDR prefix (address/length)`, `${path}.cidr`); return; }
  list(c.except).forEach((e, j) => {
    const ex = typeof e === 'string' ? parseCidrStrict(e) : null;
    if (!ex) err(Code.CILIUM_BAD_CIDR, `"${String(e)}" is not a CIDR`, `${path}.except[${j}]`);
    else if (!cidrContainsCidr(cidr, ex)) err(Code.CILIUM_BAD_CIDR, `except ${String(e)} is not inside cidr ${c.cidr}`, `${path}.except[${j}]`);
  });
}

function validatePortRule(p: Obj, path: string, err: Report, warn: Report): void {
  const rules = isObject(p.rules) ? p.rules : undefined;
  const l7Kinds = rules ? (['http', 'kafka', 'dns', 'l7proto'] as const).filter((k) => rules[k] !== undefined && rules[k] !== '') : [];
  const hasL7 = l7Kinds.length > 0 && (l7Kinds.length > 1 || nonEmpty(rules?.[l7Kinds[0] as string]) || l7Kinds[0] === 'l7proto');
  if (l7Kinds.length > 1) err(Code.CILIUM_L7_MIXED, `multiple L7 protocol rule types (${l7Kinds.join(', ')}) in one port rule`, `${path}.rules`);
  if (rules && rules.dns !== undefined) err(Code.CILIUM_BAD_VALUE, 'DNS rules are not allowed on ingress', `${path}.rules.dns`);
  if (rules && rules.l7 !== undefined && (rules.l7proto === undefined || rules.l7proto === '')) err(Code.CILIUM_BAD_VALUE, "'l7' may only be specified when a 'l7proto' is also specified", `${path}.rules.l7`);
  if (rules && nonEmpty(rules.kafka)) warn(Code.CILIUM_NOT_ENFORCED, 'Kafka rules cannot be enforced by an HTTP sidecar; this port rule allows nothing', `${path}.rules.kafka`);
  if (rules && typeof rules.l7proto === 'string' && rules.l7proto !== '') warn(Code.CILIUM_NOT_ENFORCED, `l7proto ${rules.l7proto} cannot be enforced by an HTTP sidecar; this port rule allows nothing`, `${path}.rules.l7proto`);
  if (p.listener !== undefined) err(Code.CILIUM_BAD_VALUE, 'listener is not allowed on ingress', `${path}.listener`);
  const serverNames = list(p.serverNames);
  if (serverNames.includes('')) err(Code.CILIUM_BAD_VALUE, 'serverNames must not contain an empty name', `${path}.serverNames`);
  if (serverNames.length > 0 && hasL7 && p.terminatingTLS === undefined) err(Code.CILIUM_BAD_VALUE, 'serverNames are not allowed with L7 rules without terminatingTLS', `${path}.serverNames`);
  if (p.terminatingTLS !== undefined || p.originatingTLS !== undefined) {
    warn(Code.CILIUM_APPROXIMATED, 'terminatingTLS/originatingTLS configure Cilium\'s own TLS interception; Portcullis terminates the mTLS connection itself and ignores them', `${path}.${p.terminatingTLS !== undefined ? 'terminatingTLS' : 'originatingTLS'}`);
  }
  objects(p.ports).forEach((pp, i) => {
    const at = `${path}.ports[${i}]`;
    const parsed = parsePortText(pp.port);
    if (parsed.kind === 'invalid') { err(Code.CILIUM_BAD_PORT, parsed.why, `${at}.port`); return; }
    if (hasL7 && pp.protocol !== 'TCP') err(Code.CILIUM_BAD_PORT, `L7 rules can only apply to TCP (protocol: TCP), not ${typeof pp.protocol === 'string' ? pp.protocol : 'an unset protocol'}`, `${at}.protocol`);
    if (hasL7 && parsed.kind === 'any') err(Code.CILIUM_BAD_PORT, 'L7 rules can not be used when a port is 0', `${at}.port`);
    const end = pp.endPort;
    if (typeof end === 'number' && end !== 0) {
      if (parsed.kind === 'name') warn(Code.CILIUM_BAD_PORT, 'endPort is ignored for a named port', `${at}.endPort`);
      else if (parsed.kind === 'number' && end < parsed.port) err(Code.CILIUM_BAD_PORT, `endPort ${end} is below port ${parsed.port}`, `${at}.endPort`);
    }
  });
  objects(rules?.http).forEach((h, i) => validateHttpRule(h, `${path}.rules.http[${i}]`, err, warn));
}

function validateHttpRule(h: Obj, path: string, err: Report, warn: Report): void {
  for (const key of ['path', 'method', 'host'] as const) {
    const v = h[key];
    if (typeof v !== 'string' || v === '') continue;
    const why = checkRegex(v);
    if (why !== null) err(Code.CILIUM_BAD_REGEX, `${key} is not a valid RE2 regular expression: ${why}`, `${path}.${key}`);
  }
  list(h.headers).forEach((entry, i) => {
    if (typeof entry !== 'string') return;
    if (entry.trim() === '') { err(Code.CILIUM_HEADER_FORMAT, 'a headers entry must name a header', `${path}.headers[${i}]`); return; }
    // The agent splits at the first space; `X:true` is then a presence check on a header named "X:true".
    if (!entry.includes(' ') && entry.slice(0, -1).includes(':')) {
      warn(Code.CILIUM_HEADER_FORMAT, `"${entry}" has no space, so Cilium reads it as a presence check on a header literally named "${entry}"; write "${entry.replace(':', ': ')}" to compare a value`, `${path}.headers[${i}]`);
    }
  });
  objects(h.headerMatches).forEach((m, i) => {
    if (m.secret !== undefined) {
      const fallback = typeof m.value === 'string' && m.value !== '' ? 'its value is used instead' : 'with no value the match always fails';
      warn(Code.CILIUM_APPROXIMATED, `secret values are not read by Portcullis; ${fallback}`, `${path}.headerMatches[${i}].secret`);
    }
    const action = m.mismatch;
    if ((action === 'ADD' || action === 'DELETE' || action === 'REPLACE') && typeof m.name === 'string') {
      if (!HTTP_TOKEN.test(m.name.replace(/^:/, ''))) err(Code.CILIUM_BAD_VALUE, `mismatch ${action} edits the header "${m.name}", which is not a valid HTTP header name`, `${path}.headerMatches[${i}].name`);
      else if (!editableHeader(m.name.toLowerCase())) {
        warn(Code.CILIUM_APPROXIMATED, `mismatch ${action} would edit "${m.name}", a header the proxy owns (framing, routing or identity); Portcullis does not edit it and requires the match instead (fail closed)`, `${path}.headerMatches[${i}].mismatch`);
      }
      if (typeof m.value === 'string' && /[\0\r\n]/.test(m.value)) err(Code.CILIUM_BAD_VALUE, 'a header value must not contain CR, LF or NUL', `${path}.headerMatches[${i}].value`);
    }
  });
}

const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Headers a policy's header action may not edit, because the proxy itself owns them: framing and connection
 * headers (the body is re-framed), the authority, and the identity headers Portcullis sets (security.md PC-12,
 * PC-21); an edit of one of these is read as a plain match instead.
 */
const OWNED_HEADERS = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer',
  'expect', 'http2-settings', 'proxy-authorization', 'proxy-authenticate', 'x-forwarded-client-cert', 'x-spiffe-id', 'forwarded',
  'l5d-client-id', 'l5d-remote-ip', 'l5d-server-id', 'x-real-ip',
]);
const OWNED_PREFIXES = [':', 'x-forwarded-', 'x-portcullis-', 'x-envoy-'];

/** Whether a headerMatches action may edit this (lower-cased) header on the forwarded request. */
export function editableHeader(name: string): boolean {
  return HTTP_TOKEN.test(name) && !OWNED_HEADERS.has(name) && !OWNED_PREFIXES.some((p) => name.startsWith(p));
}
