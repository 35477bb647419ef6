// Owns the small shared vocabulary of the Cilium dialect: the rules of a document (spec and specs), entity
// names, port text parsing and the well-known label keys (cilium/cilium pkg/policy/api, pkg/k8s/apis/cilium.io).

import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { isObject } from '../../schema.js';

export type Obj = { [key: string]: JsonValue };

export const KIND_CNP = 'CiliumNetworkPolicy';
export const KIND_CCNP = 'CiliumClusterwideNetworkPolicy';

/** pkg/policy/api/entity.go EntitySelectorMapping. */
export const ENTITIES = ['all', 'world', 'world-ipv4', 'world-ipv6', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'ingress', 'health', 'init', 'unmanaged', 'none'] as const;
export type Entity = (typeof ENTITIES)[number];

/** Pod labels Cilium derives from Kubernetes (pkg/k8s/apis/cilium.io/const.go). */
export const LABEL_NAMESPACE = 'io.kubernetes.pod.namespace';
export const LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';

export function isClusterwide(doc: PolicyDocument): boolean {
  return doc.kind === KIND_CCNP;
}

/** The namespace a CNP lives in (Kubernetes default when omitted); null for a clusterwide policy. */
export function policyNamespace(doc: PolicyDocument): string | null {
  return isClusterwide(doc) ? null : doc.metadata.namespace ?? 'default';
}

/** A document's rules with their field paths: `spec` first, then each of `specs`. */
export function rulesOf(doc: PolicyDocument): { rule: Obj; path: string }[] {
  const out: { rule: Obj; path: string }[] = [];
  if (isObject(doc.body.spec)) out.push({ rule: doc.body.spec, path: 'spec' });
  const specs = doc.body.specs;
  if (Array.isArray(specs)) specs.forEach((r, i) => { if (isObject(r)) out.push({ rule: r, path: `specs[${i}]` }); });
  return out;
}

export type PortText = { kind: 'any' } | { kind: 'number'; port: number } | { kind: 'name'; name: string } | { kind: 'invalid'; why: string };

/** IANA service name (RFC 6335): what pkg/iana IsSvcName accepts; such a port is a named container port. */
const SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$/;

/** PortProtocol.port as the agent reads it: a name (lower-cased), a number 0-65535 (0 = every port), or an error. */
export function parsePortText(v: JsonValue | undefined): PortText {
  if (v === undefined || v === null || v === '') return { kind: 'invalid', why: 'port must be specified' };
  const text = String(v);
  const lower = text.toLowerCase();
  if (text.length <= 15 && SVC_NAME.test(lower)) return { kind: 'name', name: lower };
  if (!/^[0-9]+$/.test(text)) return { kind: 'invalid', why: `unable to parse port "${text}"` };
  const port = Number(text);
  if (port > 65535) return { kind: 'invalid', why: `port ${text} is out of range (0-65535)` };
  return port === 0 ? { kind: 'any' } : { kind: 'number', port };
}
