// Owns the structural schemas of the Linkerd policy CRDs and Gateway API routes (as the CRD OpenAPI
// schemas in charts/linkerd-crds define them), in the shared schema language of src/policy/schema.ts.

import { labelSelector, s, type Shape, type ShapeCodes } from '../../schema.js';
import { Code } from '../../../codes.js';

const { string: str, strings: strArr, any, bool, intOrString, oneOf, int, list, object: obj } = s;

// LocalTargetRef: a policy always targets something in its own namespace, so there is no namespace field.
const targetRef = obj({ group: str, kind: str, name: str }, ['kind', 'name']);

export const PROXY_PROTOCOLS = ['unknown', 'HTTP/1', 'HTTP/2', 'gRPC', 'opaque', 'TLS'] as const;
export const DEFAULT_POLICY_NAMES = ['all-unauthenticated', 'all-authenticated', 'cluster-unauthenticated', 'cluster-authenticated', 'deny', 'audit'] as const;

function serverShape(version: string): Shape {
  const f: Record<string, Shape> = {
    podSelector: labelSelector,
    port: intOrString,
    proxyProtocol: oneOf(...PROXY_PROTOCOLS),
  };
  if (version === 'v1beta2' || version === 'v1beta3') f.externalWorkloadSelector = labelSelector;
  if (version === 'v1beta3') f.accessPolicy = oneOf(...DEFAULT_POLICY_NAMES);
  return obj(f, ['port']);
}

const headerMatch = obj({ type: oneOf('Exact', 'RegularExpression'), name: str, value: str }, ['name', 'value']);
const headerKv = list(obj({ name: str, value: str }, ['name', 'value']));
const headerModifier = obj({ set: headerKv, add: headerKv, remove: strArr });

const filter = obj({
  type: oneOf('RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'RequestMirror', 'URLRewrite', 'ExtensionRef', 'CORS', 'ExternalAuth'),
  requestHeaderModifier: headerModifier,
  responseHeaderModifier: headerModifier,
  requestRedirect: obj({
    scheme: oneOf('http', 'https'),
    hostname: str,
    path: obj({ type: oneOf('ReplaceFullPath', 'ReplacePrefixMatch'), replaceFullPath: str, replacePrefixMatch: str }, ['type']),
    port: int({ min: 1, max: 65535 }),
    statusCode: int(),
  }),
  requestMirror: any,
  urlRewrite: any,
  extensionRef: any,
  cors: any,
  externalAuth: any,
}, ['type']);

const parentRef = obj({ group: str, kind: str, namespace: str, name: str, sectionName: str, port: int() }, ['name']);

const httpRouteShape = obj({
  parentRefs: list(parentRef),
  hostnames: strArr,
  rules: list(obj({
    name: str,
    matches: list(obj({
      path: obj({ type: oneOf('Exact', 'PathPrefix', 'RegularExpression'), value: str }),
      headers: list(headerMatch),
      queryParams: list(headerMatch),
      method: oneOf('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'),
    })),
    filters: list(filter),
    backendRefs: any,
    timeouts: any,
    retry: any,
    sessionPersistence: any,
  })),
});

const grpcRouteShape = obj({
  parentRefs: list(parentRef),
  hostnames: strArr,
  rules: list(obj({
    name: str,
    matches: list(obj({
      method: obj({ type: oneOf('Exact', 'RegularExpression'), service: str, method: str }),
      headers: list(headerMatch),
    })),
    filters: list(filter),
    backendRefs: any,
    sessionPersistence: any,
  })),
});

const authenticationRef = obj({ group: str, kind: str, name: str, namespace: str }, ['kind', 'name']);

const authorizationPolicyShape = obj({
  targetRef,
  requiredAuthenticationRefs: list(authenticationRef),
}, ['targetRef', 'requiredAuthenticationRefs']);

const meshTlsShape = obj({
  identities: list(str, { min: 1 }),
  identityRefs: list(obj({ group: str, kind: str, name: str, namespace: str }, ['kind']), { min: 1 }),
});

const network = obj({ cidr: str, except: strArr }, ['cidr']);

const networkAuthShape = obj({ networks: list(network, { min: 1 }) }, ['networks']);

const serverAuthorizationShape = obj({
  server: obj({ name: str, selector: labelSelector }),
  client: obj({
    networks: list(network),
    unauthenticated: bool,
    meshTLS: obj({
      unauthenticatedTLS: bool,
      identities: strArr,
      serviceAccounts: list(obj({ name: str, namespace: str }, ['name'])),
    }),
  }),
}, ['server', 'client']);

const rps = obj({ requestsPerSecond: int({ min: 0 }) }, ['requestsPerSecond']);
const rateLimitShape = obj({
  targetRef,
  total: rps,
  identity: rps,
  overrides: list(obj({ requestsPerSecond: int({ min: 0 }), clientRefs: list(authenticationRef, { min: 1 }) }, ['requestsPerSecond', 'clientRefs'])),
}, ['targetRef']);

/** apiVersion -> kind -> spec shape, for every resource the Linkerd dialect accepts. */
const SHAPES: Record<string, Record<string, Shape>> = {};
function register(group: string, versions: string[], kind: string, shape: (v: string) => Shape): void {
  for (const v of versions) {
    const key = `${group}/${v}`;
    SHAPES[key] ??= {};
    SHAPES[key][kind] = shape(v);
  }
}
register('policy.linkerd.io', ['v1alpha1', 'v1beta1', 'v1beta2', 'v1beta3'], 'Server', serverShape);
register('policy.linkerd.io', ['v1alpha1', 'v1beta1', 'v1beta2', 'v1beta3'], 'HTTPRoute', () => httpRouteShape);
register('gateway.networking.k8s.io', ['v1', 'v1beta1'], 'HTTPRoute', () => httpRouteShape);
register('gateway.networking.k8s.io', ['v1', 'v1alpha2'], 'GRPCRoute', () => grpcRouteShape);
register('policy.linkerd.io', ['v1alpha1'], 'AuthorizationPolicy', () => authorizationPolicyShape);
register('policy.linkerd.io', ['v1alpha1'], 'MeshTLSAuthentication', () => meshTlsShape);
register('policy.linkerd.io', ['v1alpha1'], 'NetworkAuthentication', () => networkAuthShape);
register('policy.linkerd.io', ['v1alpha1', 'v1beta1'], 'ServerAuthorization', () => serverAuthorizationShape);
register('policy.linkerd.io', ['v1alpha1'], 'HTTPLocalRateLimitPolicy', () => rateLimitShape);

export function specShapeFor(apiVersion: string, kind: string): Shape | undefined {
  return SHAPES[apiVersion]?.[kind];
}

/** Linkerd's codes for the shared schema walker's problems (nulls are ignored, as Kubernetes does). */
export const linkerdShapeCodes: ShapeCodes = {
  unknown_field: Code.LINKERD_UNKNOWN_FIELD,
  wrong_type: Code.LINKERD_WRONG_TYPE,
  null_field: Code.LINKERD_WRONG_TYPE,
  bad_value: Code.LINKERD_BAD_VALUE,
  missing_field: Code.LINKERD_MISSING_FIELD,
  too_few: Code.LINKERD_TOO_FEW,
  too_many: Code.LINKERD_TOO_MANY,
};
