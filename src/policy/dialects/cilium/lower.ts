// Owns lowering CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy for one workload into one tier: ingressDeny
// rules first (any matching deny wins), headerMatches LOG marks and ADD/DELETE/REPLACE edits, the union of allows, then the L7 restriction of every
// port that has HTTP rules, and default deny once a selecting rule isolates the pod (cni-dialects.md §1.4-1.6).

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions, HeaderEdit, Matcher, PolicyRef, PolicyTier, TierRule } from '../../ir.js';
import { isObject } from '../../schema.js';
import { emptyRegistry } from '../../peers.js';
import { Code } from '../../../codes.js';
import type { DialectOutput } from '../types.js';
import { endpointMatcher, l3Matcher, matchers, selectsWorkload, unknownSourceKeys, type PeerScope } from './peers.js';
import { isClusterwide, parsePortText, policyNamespace, rulesOf, type Obj } from './types.js';
import { editableHeader } from './validate.js';

const { and, or, not, ANY, NONE } = matchers;

export type PolicyEnforcement = 'default' | 'always' | 'never';

/** Reason codes of Cilium decisions (decision.ts lists the shared ones). */
export const REASONS = {
  deny: 'deny_policy_matched',
  allow: 'allow_policy_matched',
  l7: 'http_rule_not_matched',
  log: 'header_mismatch_logged',
  defaultDeny: 'no_allow_policy_matched',
} as const;

const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
const objects = (v: JsonValue | undefined): Obj[] => list(v).filter(isObject);
const nonEmpty = (v: JsonValue | undefined): boolean => Array.isArray(v) && v.length > 0;

interface Selected { doc: PolicyDocument; ref: PolicyRef; rule: Obj; path: string; scope: (use: 'allow' | 'deny') => PeerScope }

export function lowerCilium(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput } {
  const diagnostics: Diagnostic[] = [];
  const applied = new Set<PolicyDocument>();
  const warn = (doc: PolicyDocument, code: string, message: string, fieldPath: string) =>
    diagnostics.push({ code, severity: 'warning', message, origin: doc.locate(fieldPath), fieldPath });
  const mode: PolicyEnforcement = options.cilium?.policyEnforcement ?? 'default';
  const { workload } = options;
  const registry = options.peers ?? emptyRegistry;
  const podIps = [...new Set([...registry.byId.values()].flatMap((pods) => pods.flatMap((p) => p.ips)))].sort();
  const trustDomains = [workload.trustDomain, ...workload.trustDomainAliases];

  const selected: Selected[] = [];
  const ordered = [...docs].sort((a, b) => key(a).localeCompare(key(b)));
  for (const doc of ordered) {
    const clusterwide = isClusterwide(doc);
    const namespace = policyNamespace(doc);
    if (!clusterwide && namespace !== workload.namespace) continue;
    const ref: PolicyRef = { dialect: 'cilium', kind: doc.kind, namespace: namespace ?? '', name: doc.metadata.name };
    for (const { rule, path } of rulesOf(doc)) {
      if (!selectsWorkload(rule.endpointSelector, workload, clusterwide)) continue;
      applied.add(doc);
      selected.push({ doc, ref, rule, path, scope: (use) => ({ use, namespace, trustDomains, registry, podIps }) });
    }
  }
  if (mode === 'never') {
    for (const doc of applied) warn(doc, Code.CILIUM_NOT_ENFORCED, 'Cilium policy enforcement is set to never: this policy is loaded but not enforced', 'kind');
    return { diagnostics, output: { tiers: [], applied } };
  }
  if (selected.length === 0 && mode !== 'always') return { diagnostics, output: { tiers: [], applied } };

  // fromRequires of any rule selecting the pod constrains the fromEndpoints of every allow rule (pkg/policy
  // rule.go resolveIngressPolicy). Deny rules are left as written: narrowing a deny could only widen access.
  const requires: Matcher[] = [];
  for (const s of selected) {
    for (const r of objects(s.rule.ingress)) for (const sel of list(r.fromRequires)) requires.push(endpointMatcher(sel, s.scope('allow')));
  }
  const required = and(...requires);

  const denies: TierRule[] = [];
  const marks: TierRule[] = [];
  const allows: TierRule[] = [];
  const restrictions: TierRule[] = [];
  let isolated = mode === 'always';
  // The default deny names the first policy that isolated the pod: the one to read when a request is refused.
  let isolatedBy: PolicyRef | null = null;
  const portNames = options.linkerd.portNames;

  for (const s of selected) {
    const { doc, ref, rule, path } = s;
    const isolates = nonEmpty(rule.ingress) || nonEmpty(rule.ingressDeny);
    const opted = isObject(rule.enableDefaultDeny) ? rule.enableDefaultDeny.ingress : undefined;
    if (isolates && opted !== false) {
      isolated = true;
      isolatedBy ??= ref;
    }
    const make = (id: string, action: TierRule['action'], match: Matcher, reason: string, edit?: HeaderEdit): TierRule =>
      ({ id, policy: ref, action, match, reason, namedAs: 'rule', ...(edit === undefined ? {} : { edit }) });
    const portsOf = (entry: Obj, at: string): Matcher => portMatcher(entry.ports, portNames, (field, message) => warn(doc, Code.CILIUM_PORT_NAME_UNRESOLVED, message, `${at}.${field}`));

    objects(rule.ingressDeny).forEach((r, i) => {
      const at = `${path}.ingressDeny[${i}]`;
      if (nonEmpty(r.icmps)) return; // ICMP only: nothing a TCP sidecar sees (warned by validate)
      warnUnknownSources(r, at, (m, f) => warn(doc, Code.CILIUM_APPROXIMATED, m, f));
      const l3 = l3Matcher(r, s.scope('deny'), ANY);
      const l4 = r.toPorts === undefined ? ANY : or(...objects(r.toPorts).map((p, j) => portsOf(p, `${at}.toPorts[${j}]`)));
      const toPortsEmpty = Array.isArray(r.toPorts) && r.toPorts.length === 0;
      denies.push(make(at, 'deny', and(l3, toPortsEmpty ? ANY : l4), REASONS.deny));
    });

    objects(rule.ingress).forEach((r, i) => {
      const at = `${path}.ingress[${i}]`;
      if (nonEmpty(r.icmps)) return;
      warnUnknownSources(r, at, (m, f) => warn(doc, Code.CILIUM_APPROXIMATED, m, f));
      const onlyRequires = r.fromRequires !== undefined && !['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromNodes', 'fromGroups'].some((f) => r[f] !== undefined);
      // A rule with fromRequires alone adds constraints and admits nobody by itself.
      // An empty rule (`- {}`) is read as the default-deny idiom, not as "every peer on every port": the
      // references disagree (cni-dialects.md §1.6) and this reading cannot widen access.
      const empty = Object.keys(r).length === 0;
      let l3 = onlyRequires || empty ? NONE : l3Matcher(r, s.scope('allow'), required);
      const mode = isObject(r.authentication) ? r.authentication.mode : undefined;
      if (mode === 'required') l3 = and(l3, { type: 'peer.authenticated' });
      else if (mode === 'test-always-fail') l3 = NONE;
      if (!nonEmpty(r.toPorts)) { allows.push(make(at, 'allow', l3, REASONS.allow)); return; }
      objects(r.toPorts).forEach((p, j) => {
        const pat = `${at}.toPorts[${j}]`;
        const l4 = and(portsOf(p, pat), serverNames(p.serverNames));
        const l7 = isObject(p.rules) ? p.rules : undefined;
        const http = objects(l7?.http);
        const otherL7 = l7 !== undefined && (nonEmpty(l7.kafka) || (typeof l7.l7proto === 'string' && l7.l7proto !== ''));
        if (http.length === 0 && !otherL7) { allows.push(make(pat, 'allow', and(l3, l4), REASONS.allow)); return; }
        // L7 rules restrict the port for these peers: a request that no rule's L7 part admits is refused, even
        // when the pod is not in default deny (enableDefaultDeny does not cover L7, cni-dialects.md §1.6).
        restrictions.push(make(`${pat}.rules`, 'deny', and(l3, l4), REASONS.l7));
        http.forEach((h, k) => {
          const hat = `${pat}.rules.http[${k}]`;
          const { condition, actions } = httpMatcher(h, hat);
          allows.push(make(hat, 'allow', and(l3, l4, condition), REASONS.allow));
          for (const a of actions) marks.push(make(a.id, 'log', and(l3, l4, a.match), REASONS.log, a.edit));
        });
      });
    });
  }

  const tier: PolicyTier = {
    dialect: 'cilium', name: 'ingress', group: 'cilium', protocols: ['http', 'grpc', 'tcp'], ports: {},
    anyPort: {
      ref: null, routes: null,
      rules: [...denies, ...marks, ...allows, ...restrictions],
      otherwise: isolated ? { verdict: 'deny', reason: REASONS.defaultDeny, policy: isolatedBy } : { verdict: 'pass', reason: 'not_isolated', policy: null },
      shadow: null, rateLimit: null,
    },
  };
  return { diagnostics, output: { tiers: [tier], applied } };
}

function key(doc: PolicyDocument): string {
  return `${isClusterwide(doc) ? '0' : '1'}\0${doc.metadata.namespace ?? ''}\0${doc.metadata.name}\0${doc.origin.file}\0${String(doc.origin.line).padStart(8, '0')}`;
}

function warnUnknownSources(r: Obj, at: string, warn: (message: string, fieldPath: string) => void): void {
  for (const field of ['fromEndpoints', 'fromRequires'] as const) {
    list(r[field]).forEach((sel, i) => {
      const keys = unknownSourceKeys(sel);
      if (keys.length > 0) warn(`label source of ${keys.join(', ')} is not visible to a sidecar: an allow with it matches nobody, a deny ignores it`, `${at}.${field}[${i}]`);
    });
  }
  if (nonEmpty(r.fromNodes)) warn('fromNodes needs the node inventory: an allow matches nobody, a deny matches every peer that is not a known pod', `${at}.fromNodes`);
  if (nonEmpty(r.fromGroups)) warn('fromGroups needs the cloud provider\'s groups: an allow matches nobody, a deny matches every peer that is not a known pod', `${at}.fromGroups`);
  list(r.fromCIDRSet).forEach((c, i) => {
    if (isObject(c) && (c.cidrGroupRef !== undefined || c.cidrGroupSelector !== undefined)) warn('CiliumCIDRGroups are not loaded: an allow matches nobody, a deny matches every peer that is not a known pod', `${at}.fromCIDRSet[${i}]`);
  });
  list(r.fromEntities).forEach((e, i) => {
    if (typeof e === 'string' && !['all', 'world', 'world-ipv4', 'world-ipv6', 'none'].includes(e)) {
      warn(`entity ${e} is approximated: pods are known from their SPIFFE ID and the registry, nodes are not (see docs/cni.md)`, `${at}.fromEntities[${i}]`);
    }
  });
}

/** toPorts[].ports: OR of the entries; TCP/ANY only (an HTTP sidecar sees nothing else); no entries = every port. */
function portMatcher(ports: JsonValue | undefined, portNames: Record<string, number>, warn: (field: string, message: string) => void): Matcher {
  const entries = objects(ports);
  if (entries.length === 0) return ANY;
  const numbers = new Set<number>();
  const ranges: Matcher[] = [];
  let anyPort = false;
  entries.forEach((pp, i) => {
    const protocol = typeof pp.protocol === 'string' ? pp.protocol : 'ANY';
    if (protocol !== 'TCP' && protocol !== 'ANY') return;
    const parsed = parsePortText(pp.port);
    if (parsed.kind === 'any') anyPort = true;
    else if (parsed.kind === 'number') {
      if (typeof pp.endPort === 'number' && pp.endPort > parsed.port) ranges.push({ type: 'destination.portRange', from: parsed.port, to: pp.endPort });
      else numbers.add(parsed.port);
    } else if (parsed.kind === 'name') {
      const resolved = portNames[parsed.name];
      if (resolved === undefined) warn(`ports[${i}].port`, `named port "${parsed.name}" is not a container port of this workload (--port-names); it opens nothing`);
      else numbers.add(resolved);
    }
  });
  if (anyPort) return ANY;
  const listed: Matcher = numbers.size === 0 ? NONE : { type: 'destination.port', ports: [...numbers].sort((a, b) => a - b) };
  return or(listed, ...ranges);
}

function serverNames(v: JsonValue | undefined): Matcher {
  const names = list(v).filter((n): n is string => typeof n === 'string' && n !== '');
  if (names.length === 0) return ANY;
  return or(...names.map((n): Matcher => ({ type: 'connection.sni', match: { kind: 'exact', value: n.toLowerCase(), ignoreCase: true } })));
}

const IS_HTTP: Matcher = { type: 'request.method', match: { kind: 'present' } };

/**
 * One `rules.http` entry: method, path (the raw `:path` with its query) and host as whole-value RE2 matches,
 * `headers` and `headerMatches` (cilium/cilium pkg/envoy getHTTPRule; cilium/proxy network_policy.cc
 * HeaderMatch::allowed). A headerMatch without mismatch action must hold for the rule to match. With an action
 * the rule matches either way, and a mismatch of a request whose other fields match is an action rule: LOG marks
 * the decision, ADD appends the expected value, REPLACE sets it, DELETE drops a header carrying a wrong value
 * (not an absent one, and nothing for a presence check); each edit also marks, as Cilium logs every action.
 */
function httpMatcher(h: Obj, at: string): { condition: Matcher; actions: { id: string; match: Matcher; edit?: HeaderEdit }[] } {
  const plain: Matcher[] = [IS_HTTP];
  const required: Matcher[] = [];
  const actions: { id: string; match: Matcher; edit?: HeaderEdit }[] = [];
  if (typeof h.method === 'string' && h.method !== '') plain.push({ type: 'request.method', match: { kind: 'regex', pattern: h.method } });
  if (typeof h.path === 'string' && h.path !== '') plain.push({ type: 'request.header', name: ':path', match: { kind: 'regex', pattern: h.path } });
  if (typeof h.host === 'string' && h.host !== '') plain.push({ type: 'request.host', match: { kind: 'regex', pattern: h.host } });
  for (const entry of list(h.headers)) {
    if (typeof entry !== 'string' || entry.trim() === '') continue;
    const space = entry.indexOf(' ');
    if (space === -1) { plain.push({ type: 'request.header', name: entry, match: { kind: 'present' } }); continue; }
    const name = entry.slice(0, space).replace(/:$/, '');
    plain.push({ type: 'request.header', name, match: { kind: 'exact', value: entry.slice(space + 1) } });
  }
  const matched = and(...plain);
  objects(h.headerMatches).forEach((m, i) => {
    if (typeof m.name !== 'string') return;
    const value = typeof m.value === 'string' && m.value !== '' ? m.value : undefined;
    // A secret is never read: its value (if any) is the fallback the agent uses too; without one the match fails
    // before any mismatch action (HeaderMatch::allowed returns false).
    if (m.secret !== undefined && value === undefined) { required.push(NONE); return; }
    const cond: Matcher = { type: 'request.header', name: m.name, match: value === undefined ? { kind: 'present' } : { kind: 'exact', value } };
    const id = `${at}.headerMatches[${i}]`;
    const name = m.name.toLowerCase();
    const action = m.mismatch;
    // An edit of a header the proxy owns (framing, pseudo-headers, identity) is refused as a plain match: fail closed.
    const edits = action === 'ADD' || action === 'REPLACE' || action === 'DELETE';
    if (action === 'LOG') actions.push({ id, match: and(matched, not(cond)) });
    else if (edits && !editableHeader(name)) required.push(cond);
    else if (action === 'ADD') actions.push({ id, match: and(matched, not(cond)), edit: { op: 'add', name, value: value ?? '' } });
    else if (action === 'REPLACE') actions.push({ id, match: and(matched, not(cond)), edit: { op: 'set', name, value: value ?? '' } });
    else if (action === 'DELETE') {
      if (value !== undefined) actions.push({ id, match: and(matched, { type: 'request.header', name: m.name, match: { kind: 'present' } }, not(cond)), edit: { op: 'remove', name } });
    } else required.push(cond);
  });
  return { condition: and(matched, ...required), actions };
}
