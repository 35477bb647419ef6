// Owns the structural schema of cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy, as the
// CRDs generated from cilium/cilium pkg/policy/api (rule.go, ingress.go, l4.go, http.go) define it.

import { labelSelector, objectMetadata, s, type Shape } from '../../schema.js';

/** Every L4 protocol name the CRD accepts; only TCP (and ANY) can carry what a sidecar sees. */
export const PROTOCOLS = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6', 'VRRP', 'IGMP', 'ANY'] as const;

export const MISMATCH_ACTIONS = ['LOG', 'ADD', 'DELETE', 'REPLACE'] as const;

const portProtocol = s.object({ port: s.string, endPort: s.int({ min: 0, max: 65535 }), protocol: s.oneOf(...PROTOCOLS) });

const headerMatch = s.object({
  name: s.nonEmptyString,
  value: s.string,
  secret: s.object({ namespace: s.string, name: s.string }, ['name']),
  mismatch: s.oneOf('', ...MISMATCH_ACTIONS),
}, ['name']);

const httpRule = s.object({
  path: s.string,
  method: s.string,
  host: s.string,
  headers: s.strings,
  headerMatches: s.list(headerMatch),
});

const l7Rules = s.object({
  http: s.list(httpRule),
  // Parsed for the warnings only: a sidecar in front of HTTP cannot enforce them.
  kafka: s.list(s.any),
  dns: s.list(s.any),
  l7proto: s.string,
  l7: s.list(s.any),
});

const tlsContext = s.object({ secret: s.object({ namespace: s.string, name: s.string }), trustedCA: s.string, certificate: s.string, privateKey: s.string });

const portRule = s.object({
  ports: s.list(portProtocol, { max: 40 }),
  terminatingTLS: tlsContext,
  originatingTLS: tlsContext,
  serverNames: s.strings,
  listener: s.object({ envoyConfig: s.object({ kind: s.string, name: s.string }, ['name']), name: s.string, priority: s.int({ min: 1, max: 100 }) }, ['envoyConfig', 'name']),
  rules: l7Rules,
});

const portDenyRule = s.object({ ports: s.list(portProtocol, { max: 40 }) });

const cidrRule = s.object({
  cidr: s.string,
  cidrGroupRef: s.string,
  cidrGroupSelector: labelSelector,
  except: s.strings,
});

const icmpRule = s.object({ fields: s.list(s.object({ type: s.intOrString, family: s.oneOf('IPv4', 'IPv6') }, ['type']), { max: 40 }) });

const ingressCommon = {
  fromEndpoints: s.list(labelSelector),
  fromRequires: s.list(labelSelector),
  fromCIDR: s.strings,
  fromCIDRSet: s.list(cidrRule),
  fromEntities: s.strings,
  fromGroups: s.list(s.any),
  fromNodes: s.list(labelSelector),
  icmps: s.list(icmpRule),
};

const ingressRule = s.object({
  ...ingressCommon,
  toPorts: s.list(portRule),
  authentication: s.object({ mode: s.oneOf('disabled', 'required', 'test-always-fail') }, ['mode']),
});

const ingressDenyRule = s.object({ ...ingressCommon, toPorts: s.list(portDenyRule) });

/** One Cilium rule (`spec`, or an element of `specs`). Egress is read for its warnings only. */
export const ruleShape: Shape = s.object({
  endpointSelector: labelSelector,
  nodeSelector: labelSelector,
  ingress: s.list(ingressRule),
  ingressDeny: s.list(ingressDenyRule),
  egress: s.list(s.any),
  egressDeny: s.list(s.any),
  labels: s.list(s.any),
  enableDefaultDeny: s.object({ ingress: s.bool, egress: s.bool }),
  description: s.string,
  log: s.object({ value: s.string }),
});

export const documentShape: Shape = s.object({
  apiVersion: s.string,
  kind: s.string,
  metadata: objectMetadata,
  spec: ruleShape,
  specs: s.list(ruleShape),
  status: s.any,
});
