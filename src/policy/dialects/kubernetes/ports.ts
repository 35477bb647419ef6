// Owns the port matchers of the Kubernetes dialect: NetworkPolicy ports (number, name, endPort, protocol),
// ClusterNetworkPolicy protocols and AdminNetworkPolicy ports. A sidecar only receives TCP, so UDP/SCTP match nothing.

import type { JsonValue } from '../../documents-types.js';
import type { Matcher } from '../../ir.js';
import { isObject } from './schema.js';

/** Reports a named port the workload does not declare (it then matches nothing, as on a pod without it). */
export type UnresolvedPort = (name: string, fieldPath: string) => void;

type Obj = { [key: string]: JsonValue };

function exactPort(port: number): Matcher {
  return { type: 'destination.port', ports: [port] };
}

function range(from: number, to: number): Matcher {
  return from === to ? exactPort(from) : { type: 'destination.portRange', from, to };
}

function named(name: string, portNames: Record<string, number>, fieldPath: string, unresolved: UnresolvedPort): Matcher {
  const port = Object.prototype.hasOwnProperty.call(portNames, name) ? portNames[name] : undefined;
  if (port === undefined) {
    unresolved(name, fieldPath);
    return { type: 'none' };
  }
  return exactPort(port);
}

const anyOf = (of: Matcher[]): Matcher => (of.length === 1 ? (of[0] as Matcher) : { type: 'or', of });

/** NetworkPolicyPort list: absent or empty = every port; entries OR-ed; protocol defaults to TCP. */
export function networkPolicyPorts(ports: JsonValue | undefined, path: string, portNames: Record<string, number>, unresolved: UnresolvedPort): Matcher {
  if (!Array.isArray(ports) || ports.length === 0) return { type: 'any' };
  return anyOf(ports.map((p, i): Matcher => {
    if (!isObject(p)) return { type: 'none' };
    if ((p.protocol ?? 'TCP') !== 'TCP') return { type: 'none' };
    if (p.port === undefined || p.port === null) return { type: 'any' };
    if (typeof p.port === 'string') return named(p.port, portNames, `${path}[${i}].port`, unresolved);
    const from = p.port as number;
    return typeof p.endPort === 'number' ? range(from, p.endPort) : exactPort(from);
  }));
}

function cnpPort(destinationPort: JsonValue | undefined): Matcher {
  if (!isObject(destinationPort)) return { type: 'none' };
  if (typeof destinationPort.number === 'number') return exactPort(destinationPort.number);
  const r = destinationPort.range;
  if (isObject(r) && typeof r.start === 'number' && typeof r.end === 'number') return range(r.start, r.end);
  return { type: 'none' };
}

/** ClusterNetworkPolicy `protocols`: absent = every port; `tcp` by number or range, or `destinationNamedPort`. */
export function clusterPolicyProtocols(protocols: JsonValue | undefined, path: string, portNames: Record<string, number>, unresolved: UnresolvedPort): Matcher {
  if (!Array.isArray(protocols) || protocols.length === 0) return { type: 'any' };
  return anyOf(protocols.map((p, i): Matcher => {
    if (!isObject(p)) return { type: 'none' };
    if (isObject(p.tcp)) return cnpPort(p.tcp.destinationPort);
    if (typeof p.destinationNamedPort === 'string') return named(p.destinationNamedPort, portNames, `${path}[${i}].destinationNamedPort`, unresolved);
    return { type: 'none' };
  }));
}

/** AdminNetworkPolicy v1alpha1 `ports`: absent = every port; portNumber, namedPort or portRange (TCP by default). */
export function adminPolicyPorts(ports: JsonValue | undefined, path: string, portNames: Record<string, number>, unresolved: UnresolvedPort): Matcher {
  if (!Array.isArray(ports) || ports.length === 0) return { type: 'any' };
  return anyOf(ports.map((p: JsonValue, i): Matcher => {
    if (!isObject(p)) return { type: 'none' };
    const o: Obj = p;
    if (isObject(o.portNumber)) return (o.portNumber.protocol ?? 'TCP') === 'TCP' ? exactPort(o.portNumber.port as number) : { type: 'none' };
    if (isObject(o.portRange)) return (o.portRange.protocol ?? 'TCP') === 'TCP' ? range(o.portRange.start as number, o.portRange.end as number) : { type: 'none' };
    if (typeof o.namedPort === 'string') return named(o.namedPort, portNames, `${path}[${i}].namedPort`, unresolved);
    return { type: 'none' };
  }));
}
