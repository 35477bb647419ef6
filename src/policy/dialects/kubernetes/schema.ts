// Owns the structural schemas of networking.k8s.io/v1 NetworkPolicy and the SIG-Network policy CRDs
// (ClusterNetworkPolicy v1alpha2/v1beta1, AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1) and the walker.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { closest } from '../../suggest.js';
import { Code } from '../../../codes.js';

export type Schema =
  | { t: 'str'; enumOf?: readonly string[]; max?: number }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'intOrStr' }
  | { t: 'strMap' }
  | { t: 'any' }
  | { t: 'arr'; of: Schema; min?: number; max?: number }
  /**
   * `open`: unknown fields are not schema errors. Only peers are open: the API says a peer with no field
   * this version knows comes from a newer CRD, and the rule fails closed (validate.ts reports it).
   */
  | { t: 'obj'; f: Record<string, Schema>; req?: readonly string[]; open?: boolean };

const str: Schema = { t: 'str' };
const strArr: Schema = { t: 'arr', of: str };
const obj = (f: Record<string, Schema>, req?: readonly string[], open?: boolean): Schema => ({ t: 'obj', f, ...(req ? { req } : {}), ...(open ? { open } : {}) });
const arr = (of: Schema, min?: number, max?: number): Schema => ({ t: 'arr', of, ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
const port: Schema = { t: 'int', min: 1, max: 65535 };
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

export const labelSelector: Schema = obj({
  matchLabels: { t: 'strMap' },
  matchExpressions: arr(obj({ key: str, operator: { t: 'str', enumOf: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: strArr }, ['key', 'operator'])),
});

// --- networking.k8s.io/v1 NetworkPolicy (k8s.io/api networking/v1 types.go)

const npPeer: Schema = obj({ podSelector: labelSelector, namespaceSelector: labelSelector, ipBlock: obj({ cidr: str, except: strArr }, ['cidr']) });
const npPort: Schema = obj({ protocol: { t: 'str', enumOf: PROTOCOLS }, port: { t: 'intOrStr' }, endPort: port });

const networkPolicySpec: Schema = obj({
  podSelector: labelSelector,
  policyTypes: arr({ t: 'str', enumOf: ['Ingress', 'Egress'] }, undefined, 2),
  ingress: arr(obj({ from: arr(npPeer), ports: arr(npPort) })),
  egress: arr(obj({ to: arr(npPeer), ports: arr(npPort) })),
});

// --- policy.networking.k8s.io ClusterNetworkPolicy v1alpha2 / v1beta1 (apis/v1alpha2 clusternetworkpolicy_types.go)

function namespacedPod(namespaceSelectorRequired: boolean): Schema {
  return obj({ namespaceSelector: labelSelector, podSelector: labelSelector }, namespaceSelectorRequired ? ['namespaceSelector', 'podSelector'] : ['podSelector']);
}
const cnpSubject = obj({ namespaces: labelSelector, pods: namespacedPod(false) });
const cnpPort: Schema = obj({ number: port, range: obj({ start: port, end: port }, ['start', 'end']) });
const cnpProtocol: Schema = obj({
  tcp: obj({ destinationPort: cnpPort }),
  udp: obj({ destinationPort: cnpPort }),
  sctp: obj({ destinationPort: cnpPort }),
  destinationNamedPort: str,
});
// `Allow` is the AdminNetworkPolicy spelling; read as Accept with a warning (validate.ts).
const cnpAction: Schema = { t: 'str', enumOf: ['Accept', 'Deny', 'Pass', 'Allow'] };
const cnpIngressPeer: Schema = obj({ namespaces: labelSelector, pods: namespacedPod(false) }, undefined, true);
const cnpEgressPeer: Schema = obj({ namespaces: labelSelector, pods: namespacedPod(false), nodes: labelSelector, networks: arr(str, 1, 25), domainNames: arr(str, 1, 25) }, undefined, true);

const clusterNetworkPolicySpec: Schema = obj({
  tier: { t: 'str', enumOf: ['Admin', 'Baseline'] },
  priority: { t: 'int', min: 0, max: 1000 },
  subject: cnpSubject,
  ingress: arr(obj({ name: { t: 'str', max: 100 }, action: cnpAction, from: arr(cnpIngressPeer, 1, 25), protocols: arr(cnpProtocol, 1, 25) }, ['action', 'from']), undefined, 25),
  egress: arr(obj({ name: { t: 'str', max: 100 }, action: cnpAction, to: arr(cnpEgressPeer, 1, 25), protocols: arr(cnpProtocol, 1, 25) }, ['action', 'to']), undefined, 25),
}, ['tier', 'priority', 'subject']);

// --- policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy (apis/v1alpha1)

const anpSubject = obj({ namespaces: labelSelector, pods: namespacedPod(true) });
const anpPort: Schema = obj({
  portNumber: obj({ protocol: { t: 'str', enumOf: PROTOCOLS }, port }, ['port']),
  namedPort: str,
  portRange: obj({ protocol: { t: 'str', enumOf: PROTOCOLS }, start: port, end: port }, ['start', 'end']),
});
const anpIngressPeer: Schema = obj({ namespaces: labelSelector, pods: namespacedPod(true) }, undefined, true);
const anpEgressPeer: Schema = obj({ namespaces: labelSelector, pods: namespacedPod(true), nodes: labelSelector, networks: arr(str, 1, 25), domainNames: arr(str, 1, 25) }, undefined, true);

function anpRules(actions: readonly string[]): Record<string, Schema> {
  const action: Schema = { t: 'str', enumOf: actions };
  return {
    ingress: arr(obj({ name: { t: 'str', max: 100 }, action, from: arr(anpIngressPeer, 1, 100), ports: arr(anpPort, 1, 100) }, ['action', 'from']), undefined, 100),
    egress: arr(obj({ name: { t: 'str', max: 100 }, action, to: arr(anpEgressPeer, 1, 100), ports: arr(anpPort, 1, 100) }, ['action', 'to']), undefined, 100),
  };
}
const adminNetworkPolicySpec: Schema = obj({ priority: { t: 'int', min: 0, max: 1000 }, subject: anpSubject, ...anpRules(['Allow', 'Deny', 'Pass']) }, ['priority', 'subject']);
const baselineAdminNetworkPolicySpec: Schema = obj({ subject: anpSubject, ...anpRules(['Allow', 'Deny']) }, ['subject']);

export type KubernetesKind = 'NetworkPolicy' | 'ClusterNetworkPolicy' | 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy';

const SCHEMAS: Record<string, Partial<Record<KubernetesKind, Schema>>> = {
  'networking.k8s.io/v1': { NetworkPolicy: networkPolicySpec },
  'policy.networking.k8s.io/v1alpha2': { ClusterNetworkPolicy: clusterNetworkPolicySpec },
  'policy.networking.k8s.io/v1beta1': { ClusterNetworkPolicy: clusterNetworkPolicySpec },
  'policy.networking.k8s.io/v1alpha1': { AdminNetworkPolicy: adminNetworkPolicySpec, BaselineAdminNetworkPolicy: baselineAdminNetworkPolicySpec },
};

export const KUBERNETES_KINDS: readonly KubernetesKind[] = ['NetworkPolicy', 'ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy'];

export function specSchemaFor(apiVersion: string, kind: string): Schema | undefined {
  return SCHEMAS[apiVersion]?.[kind as KubernetesKind];
}

/** The supported apiVersions of a kind, for the "unsupported version" message. */
export function versionsOf(kind: string): string[] {
  return Object.entries(SCHEMAS).filter(([, kinds]) => kind in kinds).map(([v]) => v);
}

export function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reports unknown fields (with a "did you mean"), wrong types, missing required fields and enum/range violations. */
export function checkSchema(doc: PolicyDocument, value: JsonValue | undefined, schema: Schema, path: string, out: Diagnostic[]): void {
  const report = (code: string, message: string, at: string) =>
    out.push({ code, severity: 'error', message, origin: doc.locate(at), fieldPath: at });
  // Kubernetes reads an explicit null as an absent field.
  if (value === undefined || value === null) return;
  switch (schema.t) {
    case 'any':
      return;
    case 'str':
      if (typeof value !== 'string') { report(Code.K8S_WRONG_TYPE, `${path} must be a string`, path); return; }
      if (schema.enumOf && !schema.enumOf.includes(value)) report(Code.K8S_BAD_VALUE, `${path} must be one of ${schema.enumOf.join(', ')} (got "${value}")`, path);
      if (schema.max !== undefined && value.length > schema.max) report(Code.K8S_BAD_VALUE, `${path} must be at most ${schema.max} characters`, path);
      return;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) { report(Code.K8S_WRONG_TYPE, `${path} must be an integer`, path); return; }
      if ((schema.min !== undefined && value < schema.min) || (schema.max !== undefined && value > schema.max)) {
        report(Code.K8S_BAD_VALUE, `${path} must be between ${schema.min ?? '-inf'} and ${schema.max ?? 'inf'} (got ${value})`, path);
      }
      return;
    case 'intOrStr':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) report(Code.K8S_WRONG_TYPE, `${path} must be a port number or a port name`, path);
      return;
    case 'strMap':
      if (!isObject(value)) { report(Code.K8S_WRONG_TYPE, `${path} must be a map of strings`, path); return; }
      for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') report(Code.K8S_WRONG_TYPE, `${path}[${k}] must be a string`, `${path}[${k}]`);
      return;
    case 'arr':
      if (!Array.isArray(value)) { report(Code.K8S_WRONG_TYPE, `${path} must be a list`, path); return; }
      if (schema.min !== undefined && value.length < schema.min) report(Code.K8S_TOO_FEW, `${path} needs at least ${schema.min} item(s)`, path);
      if (schema.max !== undefined && value.length > schema.max) report(Code.K8S_TOO_MANY, `${path} allows at most ${schema.max} item(s)`, path);
      value.forEach((item, i) => checkSchema(doc, item, schema.of, `${path}[${i}]`, out));
      return;
    case 'obj': {
      if (!isObject(value)) { report(Code.K8S_WRONG_TYPE, `${path} must be a mapping`, path); return; }
      const known = Object.keys(schema.f);
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.f[k];
        if (!sub) {
          if (schema.open) continue;
          const hint = closest(k, known, (s) => [s]);
          report(Code.K8S_UNKNOWN_FIELD, `unknown field ${path}.${k}${hint ? ` (did you mean ${hint}?)` : ''}`, `${path}.${k}`);
          continue;
        }
        checkSchema(doc, v, sub, `${path}.${k}`, out);
      }
      for (const r of schema.req ?? []) if (value[r] === undefined || value[r] === null) report(Code.K8S_MISSING_FIELD, `${path}.${r} is required`, path);
      return;
    }
  }
}
