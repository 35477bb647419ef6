// Owns the peer registry file: `peers: [{spiffeId, namespace, serviceAccount, labels, namespaceLabels,
// serviceAccountLabels, ips}]` in YAML or JSON, validated with file:line and field paths (docs/cni.md).
import { isIP } from 'node:net';
import type { Diagnostic } from '../policy/diagnostics.js';
import { buildRegistry, type PeerFacts, type PeerRegistry } from '../policy/peers.js';
import { closest } from '../policy/suggest.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import { Code } from '../codes.js';
import { parseLocatedYaml } from './config-file.js';
import { Problems, type Located, type Where } from './located.js';

export type PeerFileResult = { registry: PeerRegistry; diagnostics: Diagnostic[] } | { registry: undefined; diagnostics: Diagnostic[] };

const ENTRY_FIELDS = ['spiffeId', 'namespace', 'serviceAccount', 'labels', 'namespaceLabels', 'serviceAccountLabels', 'ips'] as const;
/** Kubernetes sets it on every namespace; a registry entry gets it from its namespace when absent. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

// Kubernetes label syntax (apimachinery validation): optional DNS-subdomain prefix, a name of at most 63.
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key prefix '${prefix}' is not a DNS subdomain`;
  if (!LABEL_NAME.test(name)) return `label key '${key}' is not a valid label name (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`;
  return undefined;
}

function scalarString(v: Located, problems: Problems, what: string): string | undefined {
  if (v.type !== 'scalar' || typeof v.value !== 'string') {
    const hint = v.type === 'scalar' && (typeof v.value === 'number' || typeof v.value === 'boolean') ? ` (quote it: "${v.text}")` : '';
    return problems.error(v.where, Code.PEERS_FIELD_TYPE, `${what} must be a string${hint}`);
  }
  return v.value;
}

function labelMap(v: Located, problems: Problems, what: string): Record<string, string> | undefined {
  if (v.type === 'scalar' && v.value === null) return {};
  if (v.type !== 'map') return problems.error(v.where, Code.PEERS_FIELD_TYPE, `${what} must be a map of label names to string values`);
  const out: Record<string, string> = {};
  let ok = true;
  for (const e of v.entries) {
    const keyProblem = labelKeyProblem(e.key);
    if (keyProblem) { problems.error(e.keyWhere, Code.PEERS_BAD_VALUE, keyProblem); ok = false; continue; }
    const value = scalarString(e.value, problems, `label '${e.key}'`);
    if (value === undefined) { ok = false; continue; }
    if (value !== '' && !LABEL_NAME.test(value)) { problems.error(e.value.where, Code.PEERS_BAD_VALUE, `label value '${value}' is not a valid label value`); ok = false; continue; }
    out[e.key] = value;
  }
  return ok ? out : undefined;
}

function ipList(v: Located, problems: Problems): string[] | undefined {
  if (v.type === 'scalar' && v.value === null) return [];
  if (v.type !== 'seq') return problems.error(v.where, Code.PEERS_FIELD_TYPE, 'ips must be a list of IP addresses');
  const out: string[] = [];
  let ok = true;
  for (const item of v.items) {
    const ip = scalarString(item, problems, 'an IP address');
    if (ip === undefined) { ok = false; continue; }
    if (isIP(ip) === 0) { problems.error(item.where, Code.PEERS_BAD_VALUE, `'${ip}' is not an IP address (a pod address, no prefix length)`); ok = false; continue; }
    out.push(ip.toLowerCase());
  }
  return ok ? out : undefined;
}

interface ParsedEntry { facts: PeerFacts; where: Where; fields: Map<string, Where> }

function parseEntry(v: Located, problems: Problems): ParsedEntry | undefined {
  if (v.type !== 'map') return problems.error(v.where, Code.PEERS_FIELD_TYPE, 'each peer must be a map with spiffeId, namespace, serviceAccount, labels, namespaceLabels, serviceAccountLabels and ips');
  const fields = new Map<string, Located>();
  const keyWhere = new Map<string, Where>();
  for (const e of v.entries) {
    if (!(ENTRY_FIELDS as readonly string[]).includes(e.key)) {
      const best = closest(e.key, ENTRY_FIELDS, (f) => [f], (s) => s.toLowerCase());
      problems.error(e.keyWhere, Code.PEERS_UNKNOWN_FIELD, `unknown field '${e.key}'${best ? ` (did you mean '${best}'?)` : ` (allowed: ${ENTRY_FIELDS.join(', ')})`}`);
      continue;
    }
    fields.set(e.key, e.value);
    keyWhere.set(e.key, e.keyWhere);
  }
  const before = problems.list.length;
  const idNode = fields.get('spiffeId');
  if (idNode === undefined) return problems.error({ ...v.where, fieldPath: `${v.where.fieldPath}.spiffeId` }, Code.PEERS_FIELD_TYPE, 'spiffeId is required');
  const spiffeId = scalarString(idNode, problems, 'spiffeId');
  if (spiffeId === undefined) return undefined;
  const parsed = parseSpiffeId(spiffeId);
  if (!parsed.ok) return problems.error(idNode.where, Code.PEERS_BAD_VALUE, `'${spiffeId}' is not a SPIFFE ID: ${parsed.error}`);
  const nsSa = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(parsed.id.path);
  const fromId = { namespace: nsSa?.[1], serviceAccount: nsSa?.[2] };
  const named = (key: 'namespace' | 'serviceAccount'): string | undefined => {
    const node = fields.get(key);
    if (node === undefined) {
      if (fromId[key] === undefined) problems.error({ ...v.where, fieldPath: `${v.where.fieldPath}.${key}` }, Code.PEERS_FIELD_TYPE, `${key} is required: the SPIFFE ID has no /ns/<namespace>/sa/<serviceAccount> path to take it from`);
      return fromId[key];
    }
    const value = scalarString(node, problems, key);
    if (value === undefined) return undefined;
    if (value === '') return problems.error(node.where, Code.PEERS_BAD_VALUE, `${key} must not be empty`);
    if (fromId[key] !== undefined && value !== fromId[key]) {
      return problems.error(node.where, Code.PEERS_IDENTITY_MISMATCH, `${key} '${value}' disagrees with the SPIFFE ID ${spiffeId} (${key} '${fromId[key]}')`);
    }
    return value;
  };
  const namespace = named('namespace');
  const serviceAccount = named('serviceAccount');
  const maps = (key: 'labels' | 'namespaceLabels' | 'serviceAccountLabels') => {
    const node = fields.get(key);
    return node === undefined ? {} : labelMap(node, problems, key);
  };
  const labels = maps('labels');
  const namespaceLabels = maps('namespaceLabels');
  const serviceAccountLabels = maps('serviceAccountLabels');
  const ipsNode = fields.get('ips');
  const ips = ipsNode === undefined ? [] : ipList(ipsNode, problems);
  if (problems.list.length > before || namespace === undefined || serviceAccount === undefined || !labels || !namespaceLabels || !serviceAccountLabels || !ips) return undefined;
  const nsName = namespaceLabels[NAMESPACE_NAME_LABEL];
  if (nsName !== undefined && nsName !== namespace) {
    return problems.error(fields.get('namespaceLabels')?.where ?? v.where, Code.PEERS_IDENTITY_MISMATCH, `namespaceLabels '${NAMESPACE_NAME_LABEL}: ${nsName}' disagrees with namespace '${namespace}'`);
  }
  const where = new Map<string, Where>();
  for (const [k, n] of fields) where.set(k, n.where);
  for (const [k, w] of keyWhere) if (!where.has(k)) where.set(k, w);
  return {
    facts: { spiffeId, namespace, serviceAccount, labels, namespaceLabels: { ...namespaceLabels, [NAMESPACE_NAME_LABEL]: namespace }, serviceAccountLabels, ips },
    where: v.where, fields: where,
  };
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
};

/**
 * Facts that belong to a namespace, a ServiceAccount or an address cannot differ between entries: one label
 * set per namespace and per ServiceAccount (written once, or the same wherever written; an entry that omits
 * them takes them from the entry that gives them), one identity per IP. A registry that disagrees with itself
 * is refused rather than read one way or the other.
 */
function crossCheck(entries: ParsedEntry[], problems: Problems): void {
  const line = (e: ParsedEntry) => `${e.where.origin.file}:${e.where.origin.line}`;
  const shared = (field: 'namespaceLabels' | 'serviceAccountLabels', keyOf: (f: PeerFacts) => string, what: (key: string) => string) => {
    const first = new Map<string, ParsedEntry>();
    for (const e of entries) {
      if (!e.fields.has(field)) continue;
      const key = keyOf(e.facts);
      const prior = first.get(key);
      if (prior === undefined) first.set(key, e);
      else if (!sameLabels(prior.facts[field], e.facts[field])) problems.error(e.fields.get(field) as Where, Code.PEERS_CONFLICT, `${what(key)} has other ${field} at ${line(prior)}`);
    }
    for (const e of entries) {
      const given = first.get(keyOf(e.facts));
      if (!e.fields.has(field) && given !== undefined) e.facts[field] = given.facts[field];
    }
  };
  shared('namespaceLabels', (f) => f.namespace, (ns) => `namespace '${ns}'`);
  shared('serviceAccountLabels', (f) => `${f.namespace}/${f.serviceAccount}`, (sa) => `ServiceAccount '${sa}'`);
  const ipFirst = new Map<string, ParsedEntry>();
  for (const e of entries) {
    for (const ip of new Set(e.facts.ips)) {
      const other = ipFirst.get(ip);
      if (other === undefined) ipFirst.set(ip, e);
      else if (other.facts.spiffeId !== e.facts.spiffeId) {
        problems.error(e.fields.get('ips') ?? e.where, Code.PEERS_CONFLICT, `IP ${ip} is also listed for ${other.facts.spiffeId} at ${line(other)}`);
      }
    }
  }
}

const PEER_CODES: ReadonlySet<string> = new Set([Code.PEERS_READ, Code.PEERS_YAML, Code.PEERS_UNKNOWN_FIELD, Code.PEERS_FIELD_TYPE, Code.PEERS_BAD_VALUE, Code.PEERS_IDENTITY_MISMATCH, Code.PEERS_CONFLICT]);

/** Whether a diagnostic is about the peer registry (rather than the policies compiled with it). */
export function isPeerDiagnostic(d: Diagnostic): boolean {
  return PEER_CODES.has(d.code);
}

/** The registry in `text` (YAML or JSON), or the errors that refuse it whole (never half a registry). */
export function parsePeerFile(text: string, file: string): PeerFileResult {
  const problems = new Problems();
  const root = parseLocatedYaml(text, file, problems, Code.PEERS_YAML);
  if (root === undefined) return { registry: undefined, diagnostics: problems.list };
  const top = { origin: { file, line: 1, column: 1 }, fieldPath: '', baseDir: '' };
  if (root.type !== 'map') {
    problems.error(root.type === 'scalar' && root.value === null ? top : root.where, Code.PEERS_FIELD_TYPE, 'the peer registry must be a map with a `peers` list');
    return { registry: undefined, diagnostics: problems.list };
  }
  let list: Located | undefined;
  for (const e of root.entries) {
    if (e.key === 'peers') list = e.value;
    else problems.error(e.keyWhere, Code.PEERS_UNKNOWN_FIELD, `unknown field '${e.key}' (the registry has one key: peers)`);
  }
  if (list === undefined) problems.error({ ...top, fieldPath: 'peers' }, Code.PEERS_FIELD_TYPE, 'peers is required (an empty registry is `peers: []`)');
  else if (!(list.type === 'seq')) problems.error(list.where, Code.PEERS_FIELD_TYPE, 'peers must be a list');
  if (problems.hasErrors() || list === undefined || list.type !== 'seq') return { registry: undefined, diagnostics: problems.list };
  const entries: ParsedEntry[] = [];
  for (const item of list.items) {
    const e = parseEntry(item, problems);
    if (e) entries.push(e);
  }
  if (!problems.hasErrors()) crossCheck(entries, problems);
  if (problems.hasErrors()) return { registry: undefined, diagnostics: problems.list };
  return { registry: buildRegistry(entries.map((e) => e.facts)), diagnostics: problems.list };
}
