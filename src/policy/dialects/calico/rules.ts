// Owns the lowering of one Calico ingress rule to a matcher: protocol, ipVersion, source (the caller) and destination
// (this workload, decided at compile time), ports and the HTTP match (cni-dialects.md §2.4, §2.5; policy_common.go).

import type { JsonValue } from '../../documents-types.js';
import type { Matcher, WorkloadIdentity } from '../../ir.js';
import { Code } from '../../../codes.js';
import { ANY, NONE, and, disagreeingIdentities, not, or, peerMatcher, viewLabels, type PeerEnv, type PeerPart, type Use } from './peer.js';
import { isObject } from './schema.js';
import { evaluateSelector, labelsOf, parseSelector, usesGlobal, type SelectorNode } from './selector.js';
import { parsePort, protocolNumber } from './validate.js';

type Obj = { [key: string]: JsonValue };

/** What lowering a rule needs from around it. */
export interface RuleEnv extends PeerEnv {
  workload: WorkloadIdentity;
  /** Labels of the workload's ServiceAccount, when the registry knows them. */
  workloadServiceAccountLabels: Record<string, string>;
  /** Named container ports of the workload (`--port-names`). */
  portNames: Record<string, number>;
  /** The policy's namespace for a NetworkPolicy: rule selectors then range over that namespace only. */
  policyNamespace: string | undefined;
  warn: (code: string, message: string, fieldPath: string) => void;
}

export type CalicoAction = 'Allow' | 'Deny' | 'Log' | 'Pass';

/**
 * How an action reads criteria the sidecar cannot decide (§5.3, docs/cni.md): an Allow must not match on doubt;
 * a Deny, a Pass and a Log do (a Pass that cannot be understood matches everything, as for AdminNetworkPolicy).
 */
export const useOf = (action: CalicoAction): Use => (action === 'Allow' ? 'allow' : 'deny');

/** A constant for a criterion the sidecar cannot evaluate: never for an allow, always otherwise. */
const doubt = (use: Use): Matcher => (use === 'allow' ? NONE : ANY);
const flip = (use: Use): Use => (use === 'allow' ? 'deny' : 'allow');

function selectorOf(v: JsonValue | undefined): SelectorNode | undefined {
  if (typeof v !== 'string') return undefined;
  const r = parseSelector(v);
  // validate.ts refused every malformed selector before lowering.
  return r.ok ? r.selector : undefined;
}

const strings = (v: JsonValue | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export function lowerRule(rule: Obj, at: string, action: CalicoAction, env: RuleEnv): Matcher {
  const use = useOf(action);
  const parts: Matcher[] = [];
  const protocol = rule.protocol === undefined || rule.protocol === null ? undefined : protocolNumber(rule.protocol);
  const notProtocol = rule.notProtocol === undefined || rule.notProtocol === null ? undefined : protocolNumber(rule.notProtocol);
  // Everything the sidecar sees is TCP: a rule for another protocol never matches here, which is Calico's own
  // meaning for TCP traffic; that traffic itself does not pass the sidecar.
  if (protocol !== undefined && protocol !== 6) {
    env.warn(Code.CALICO_NOT_ENFORCED, `protocol ${String(rule.protocol)}: the sidecar sees TCP only; this rule never matches here and ${String(rule.protocol)} traffic is not filtered by Portcullis`, `${at}.protocol`);
    return NONE;
  }
  if (notProtocol === 6) return NONE;
  if (rule.ipVersion === 4) parts.push({ type: 'source.ip', cidrs: ['0.0.0.0/0'] });
  if (rule.ipVersion === 6) parts.push({ type: 'source.ip', cidrs: ['::/0'] }, not({ type: 'source.ip', cidrs: ['0.0.0.0/0'] }));
  if (isObject(rule.source)) parts.push(lowerSource(rule.source, `${at}.source`, action, use, env));
  if (isObject(rule.destination)) parts.push(lowerDestination(rule.destination, `${at}.destination`, use, env));
  if (isObject(rule.http)) parts.push(lowerHttp(rule.http));
  return and(...parts);
}

function lowerSource(e: Obj, at: string, action: CalicoAction, use: Use, env: RuleEnv): Matcher {
  const parts: Matcher[] = [];
  const nets = strings(e.nets);
  if (nets.length > 0) parts.push({ type: 'source.ip', cidrs: nets });
  const notNets = strings(e.notNets);
  if (notNets.length > 0) parts.push(not({ type: 'source.ip', cidrs: notNets }));
  for (const key of ['ports', 'notPorts'] as const) {
    if (Array.isArray(e[key]) && e[key].length > 0) {
      env.warn(Code.CALICO_NOT_ENFORCED, `source ${key}: the caller's source port is not part of a request decision; the rule ${use === 'allow' ? 'matches nothing' : 'matches every source port'}`, `${at}.${key}`);
      parts.push(doubt(use));
    }
  }
  if (isObject(e.services)) {
    env.warn(Code.CALICO_NOT_ENFORCED, `source services: which pods back a Service is not known to the sidecar; the rule ${use === 'allow' ? 'matches nothing' : 'matches every caller'}`, `${at}.services`);
    parts.push(doubt(use));
  }
  const nsText = typeof e.namespaceSelector === 'string' && e.namespaceSelector.trim() !== '' ? e.namespaceSelector : undefined;
  const nsSelector = nsText === undefined ? undefined : selectorOf(nsText);
  if (nsSelector !== undefined && usesGlobal(nsSelector)) {
    // global(): non-namespaced endpoints (host endpoints, global network sets), which a SPIFFE caller never is.
    env.warn(Code.CALICO_NOT_ENFORCED, `namespaceSelector global() selects host endpoints and global network sets, which the sidecar cannot tell apart; the rule ${use === 'allow' ? 'matches nothing' : 'matches every caller'}`, `${at}.namespaceSelector`);
    return and(...parts, doubt(use));
  }
  const selText = typeof e.selector === 'string' && e.selector.trim() !== '' ? e.selector : undefined;
  const selector = selText === undefined ? undefined : selectorOf(selText);
  const notText = typeof e.notSelector === 'string' && e.notSelector.trim() !== '' ? e.notSelector : undefined;
  const notSelector = notText === undefined ? undefined : selectorOf(notText);
  const peer: PeerPart[] = [];
  if (nsSelector !== undefined) peer.push({ view: 'namespace', node: nsSelector });
  if (selector !== undefined) peer.push({ view: 'pod', node: selector });
  let accounts = false;
  if (isObject(e.serviceAccounts)) {
    const names = strings(e.serviceAccounts.names);
    if (names.length > 0) peer.push({ view: 'serviceAccount', node: { op: 'in', key: 'projectcalico.org/name', values: [...new Set(names)].sort() } });
    const saSel = typeof e.serviceAccounts.selector === 'string' && e.serviceAccounts.selector.trim() !== '' ? selectorOf(e.serviceAccounts.selector) : undefined;
    if (saSel !== undefined) peer.push({ view: 'serviceAccount', node: saSel });
    accounts = names.length > 0 || saSel !== undefined;
  }
  // A NetworkPolicy rule with a pod selector, a notSelector or service accounts, and no namespaceSelector, only
  // matches endpoints of the policy's own namespace (app-policy checker computeNamespaceMatch, §2.4).
  if (nsSelector === undefined && env.policyNamespace !== undefined && (selector !== undefined || notSelector !== undefined || accounts)) {
    peer.unshift({ view: 'namespace', node: { op: '==', key: 'projectcalico.org/name', value: env.policyNamespace } });
  }
  if (peer.length > 0) {
    parts.push(peerMatcher(peer, use, env));
    if (action === 'Pass' || action === 'Log') warnDisagreement(peer, at, action, env);
  }
  if (notSelector !== undefined) {
    // Anything but the selected endpoints (plaintext callers too, unless a namespace scope above requires an
    // endpoint): the selector is read with the opposite use, then negated.
    const negated: PeerPart[] = [{ view: 'pod', node: notSelector }];
    parts.push(not(peerMatcher(negated, flip(use), env)));
    if (action === 'Pass' || action === 'Log') warnDisagreement(negated, `${at}.notSelector`, action, env);
  }
  return and(...parts);
}

function warnDisagreement(parts: PeerPart[], at: string, action: CalicoAction, env: RuleEnv): void {
  const ids = disagreeingIdentities(parts, env.registry);
  if (ids.length === 0) return;
  env.warn(Code.CALICO_HETEROGENEOUS_PEER, `the pods of ${ids.join(', ')} differ on this ${action} rule's selectors, and a ${action} has no safe reading for such an identity; it is read as matching when any pod matches`, at);
}

/** The destination on ingress is this workload: decided once, at compile time. */
function lowerDestination(e: Obj, at: string, use: Use, env: RuleEnv): Matcher {
  const w = env.workload;
  const facts = { namespace: w.namespace, serviceAccount: w.serviceAccount, labels: w.labels, namespaceLabels: w.namespaceLabels ?? {}, serviceAccountLabels: env.workloadServiceAccountLabels };
  const holds = (node: SelectorNode | undefined, view: 'pod' | 'namespace' | 'serviceAccount'): boolean => node === undefined || evaluateSelector(node, labelsOf(viewLabels(view, facts)));
  const parts: Matcher[] = [];
  const sel = selectorOf(e.selector);
  if (!holds(sel, 'pod')) return NONE;
  const notSel = selectorOf(e.notSelector);
  if (notSel !== undefined && holds(notSel, 'pod')) return NONE;
  const nsSel = selectorOf(e.namespaceSelector);
  if (nsSel !== undefined && (usesGlobal(nsSel) || !holds(nsSel, 'namespace'))) return NONE;
  if (isObject(e.serviceAccounts)) {
    const names = strings(e.serviceAccounts.names);
    if (names.length > 0 && !names.includes(w.serviceAccount)) return NONE;
    if (!holds(selectorOf(e.serviceAccounts.selector), 'serviceAccount')) return NONE;
  }
  if (isObject(e.services)) {
    env.warn(Code.CALICO_NOT_ENFORCED, `destination services: whether this workload backs the Service is not known to the sidecar; the rule ${use === 'allow' ? 'matches nothing' : 'matches every request'}`, `${at}.services`);
    parts.push(doubt(use));
  }
  const nets = strings(e.nets);
  if (nets.length > 0) parts.push({ type: 'destination.ip', cidrs: nets });
  const notNets = strings(e.notNets);
  if (notNets.length > 0) parts.push(not({ type: 'destination.ip', cidrs: notNets }));
  if (Array.isArray(e.ports) && e.ports.length > 0) parts.push(portsMatcher(e.ports, `${at}.ports`, use, env));
  if (Array.isArray(e.notPorts) && e.notPorts.length > 0) parts.push(not(portsMatcher(e.notPorts, `${at}.notPorts`, flip(use), env)));
  return and(...parts);
}

/** The workload port is one of `entries`; a port name the workload does not declare reads by `use`. */
function portsMatcher(entries: JsonValue[], at: string, use: Use, env: RuleEnv): Matcher {
  const ranges: [number, number][] = [];
  let unresolved = false;
  entries.forEach((entry, i) => {
    const p = parsePort(entry);
    if (p === undefined) return;
    if (p.kind === 'range') { ranges.push([p.min, p.max]); return; }
    const port = env.portNames[p.name];
    if (port !== undefined) { ranges.push([port, port]); return; }
    unresolved = true;
    env.warn(Code.CALICO_PORT_NAME_UNRESOLVED, `port name "${p.name}" is not a named port of this workload (--port-names); ${use === 'allow' ? 'it matches no port' : 'it is read as every port'}`, `${at}[${i}]`);
  });
  if (unresolved && use === 'deny') return ANY;
  return portRanges(ranges);
}

function portRanges(ranges: [number, number][]): Matcher {
  const single = [...new Set(ranges.filter(([min, max]) => min === max).map(([p]) => p))].sort((a, b) => a - b);
  const spans = ranges.filter(([min, max]) => min !== max);
  return or(
    single.length > 0 ? { type: 'destination.port', ports: single } : NONE,
    ...spans.map(([from, to]): Matcher => ({ type: 'destination.portRange', from, to })),
  );
}

function lowerHttp(http: Obj): Matcher {
  // An http clause makes the rule HTTP-only: a TCP connection has no method.
  const parts: Matcher[] = [{ type: 'request.method', match: { kind: 'present' } }];
  const methods = strings(http.methods);
  // Methods compare exactly, case and all; the app-policy checker also reads "*" as any method.
  if (methods.length > 0 && !methods.includes('*')) parts.push(or(...methods.map((value): Matcher => ({ type: 'request.method', match: { kind: 'exact', value } }))));
  const paths = Array.isArray(http.paths) ? http.paths.filter(isObject) : [];
  if (paths.length > 0) {
    parts.push(or(...paths.map((p): Matcher => typeof p.exact === 'string' && p.exact !== ''
      ? { type: 'request.path', match: { kind: 'exact', value: p.exact } }
      // Segment-anchored: `/users` admits `/users/1`, never `/users-admin` (newer app-policy match.go; docs/cni.md).
      : { type: 'request.path', match: { kind: 'segment-prefix', value: String(p.prefix) } })));
  }
  return and(...parts);
}
