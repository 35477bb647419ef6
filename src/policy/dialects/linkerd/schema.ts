// Owns the structural schemas of the Linkerd policy CRDs and Gateway API routes (as the CRD OpenAPI
// schemas in charts/linkerd-crds define them) and the walker that reports unknown fields and bad types.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { Code } from '../../../codes.js';

export type Schema =
  | { t: 'str'; enumOf?: readonly string[]; min?: number }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'bool' }
  | { t: 'intOrStr' }
  | { t: 'strMap' }
  | { t: 'any' }
  | { t: 'arr'; of: Schema; min?: number; max?: number }
  | { t: 'obj'; f: Record<string, Schema>; req?: readonly string[] };

const str: Schema = { t: 'str' };
const strArr: Schema = { t: 'arr', of: str };
const any: Schema = { t: 'any' };

const labelSelector: Schema = {
  t: 'obj',
  f: {
    matchLabels: { t: 'strMap' },
    matchExpressions: {
      t: 'arr',
      of: { t: 'obj', f: { key: str, operator: { t: 'str', enumOf: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: strArr }, req: ['key', 'operator'] },
    },
  },
};

// LocalTargetRef: a policy always targets something in its own namespace, so there is no namespace field.
const targetRef: Schema = { t: 'obj', f: { group: str, kind: str, name: str }, req: ['kind', 'name'] };

export const PROXY_PROTOCOLS = ['unknown', 'HTTP/1', 'HTTP/2', 'gRPC', 'opaque', 'TLS'] as const;
export const DEFAULT_POLICY_NAMES = ['all-unauthenticated', 'all-authenticated', 'cluster-unauthenticated', 'cluster-authenticated', 'deny', 'audit'] as const;

function serverSchema(version: string): Schema {
  const f: Record<string, Schema> = {
    podSelector: labelSelector,
    port: { t: 'intOrStr' },
    proxyProtocol: { t: 'str', enumOf: PROXY_PROTOCOLS },
  };
  if (version === 'v1beta2' || version === 'v1beta3') f.externalWorkloadSelector = labelSelector;
  if (version === 'v1beta3') f.accessPolicy = { t: 'str', enumOf: DEFAULT_POLICY_NAMES };
  return { t: 'obj', f, req: ['port'] };
}

const headerMatch: Schema = { t: 'obj', f: { type: { t: 'str', enumOf: ['Exact', 'RegularExpression'] }, name: str, value: str }, req: ['name', 'value'] };
const headerKv: Schema = { t: 'arr', of: { t: 'obj', f: { name: str, value: str }, req: ['name', 'value'] } };
const headerModifier: Schema = { t: 'obj', f: { set: headerKv, add: headerKv, remove: strArr } };

const filter: Schema = {
  t: 'obj',
  f: {
    type: { t: 'str', enumOf: ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'RequestMirror', 'URLRewrite', 'ExtensionRef', 'CORS', 'ExternalAuth'] },
    requestHeaderModifier: headerModifier,
    responseHeaderModifier: headerModifier,
    requestRedirect: {
      t: 'obj',
      f: {
        scheme: { t: 'str', enumOf: ['http', 'https'] },
        hostname: str,
        path: { t: 'obj', f: { type: { t: 'str', enumOf: ['ReplaceFullPath', 'ReplacePrefixMatch'] }, replaceFullPath: str, replacePrefixMatch: str }, req: ['type'] },
        port: { t: 'int', min: 1, max: 65535 },
        statusCode: { t: 'int' },
      },
    },
    requestMirror: any,
    urlRewrite: any,
    extensionRef: any,
    cors: any,
    externalAuth: any,
  },
  req: ['type'],
};

const parentRef: Schema = { t: 'obj', f: { group: str, kind: str, namespace: str, name: str, sectionName: str, port: { t: 'int' } }, req: ['name'] };

const httpRouteSchema: Schema = {
  t: 'obj',
  f: {
    parentRefs: { t: 'arr', of: parentRef },
    hostnames: strArr,
    rules: {
      t: 'arr',
      of: {
        t: 'obj',
        f: {
          name: str,
          matches: {
            t: 'arr',
            of: {
              t: 'obj',
              f: {
                path: { t: 'obj', f: { type: { t: 'str', enumOf: ['Exact', 'PathPrefix', 'RegularExpression'] }, value: str } },
                headers: { t: 'arr', of: headerMatch },
                queryParams: { t: 'arr', of: headerMatch },
                method: { t: 'str', enumOf: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] },
              },
            },
          },
          filters: { t: 'arr', of: filter },
          backendRefs: any,
          timeouts: any,
          retry: any,
          sessionPersistence: any,
        },
      },
    },
  },
};

const grpcRouteSchema: Schema = {
  t: 'obj',
  f: {
    parentRefs: { t: 'arr', of: parentRef },
    hostnames: strArr,
    rules: {
      t: 'arr',
      of: {
        t: 'obj',
        f: {
          name: str,
          matches: {
            t: 'arr',
            of: {
              t: 'obj',
              f: {
                method: { t: 'obj', f: { type: { t: 'str', enumOf: ['Exact', 'RegularExpression'] }, service: str, method: str } },
                headers: { t: 'arr', of: headerMatch },
              },
            },
          },
          filters: { t: 'arr', of: filter },
          backendRefs: any,
          sessionPersistence: any,
        },
      },
    },
  },
};

const authorizationPolicySchema: Schema = {
  t: 'obj',
  f: {
    targetRef,
    requiredAuthenticationRefs: { t: 'arr', of: { t: 'obj', f: { group: str, kind: str, name: str, namespace: str }, req: ['kind', 'name'] } },
  },
  req: ['targetRef', 'requiredAuthenticationRefs'],
};

const meshTlsSchema: Schema = {
  t: 'obj',
  f: {
    identities: { t: 'arr', of: str, min: 1 },
    identityRefs: { t: 'arr', of: { t: 'obj', f: { group: str, kind: str, name: str, namespace: str }, req: ['kind'] }, min: 1 },
  },
};

const network: Schema = { t: 'obj', f: { cidr: str, except: strArr }, req: ['cidr'] };

const networkAuthSchema: Schema = { t: 'obj', f: { networks: { t: 'arr', of: network, min: 1 } }, req: ['networks'] };

const serverAuthorizationSchema: Schema = {
  t: 'obj',
  f: {
    server: { t: 'obj', f: { name: str, selector: labelSelector } },
    client: {
      t: 'obj',
      f: {
        networks: { t: 'arr', of: network },
        unauthenticated: { t: 'bool' },
        meshTLS: {
          t: 'obj',
          f: {
            unauthenticatedTLS: { t: 'bool' },
            identities: strArr,
            serviceAccounts: { t: 'arr', of: { t: 'obj', f: { name: str, namespace: str }, req: ['name'] } },
          },
        },
      },
    },
  },
  req: ['server', 'client'],
};

const rps: Schema = { t: 'obj', f: { requestsPerSecond: { t: 'int', min: 0 } }, req: ['requestsPerSecond'] };
const rateLimitSchema: Schema = {
  t: 'obj',
  f: {
    targetRef,
    total: rps,
    identity: rps,
    overrides: {
      t: 'arr',
      of: {
        t: 'obj',
        f: { requestsPerSecond: { t: 'int', min: 0 }, clientRefs: { t: 'arr', of: { t: 'obj', f: { group: str, kind: str, name: str, namespace: str }, req: ['kind', 'name'] }, min: 1 } },
        req: ['requestsPerSecond', 'clientRefs'],
      },
    },
  },
  req: ['targetRef'],
};

/** apiVersion -> kind -> spec schema, for every resource the Linkerd dialect accepts. */
const SCHEMAS: Record<string, Record<string, Schema>> = {};
function register(group: string, versions: string[], kind: string, schema: (v: string) => Schema): void {
  for (const v of versions) {
    const key = `${group}/${v}`;
    SCHEMAS[key] ??= {};
    SCHEMAS[key][kind] = schema(v);
  }
}
register('policy.linkerd.io', ['v1alpha1', 'v1beta1', 'v1beta2', 'v1beta3'], 'Server', serverSchema);
register('policy.linkerd.io', ['v1alpha1', 'v1beta1', 'v1beta2', 'v1beta3'], 'HTTPRoute', () => httpRouteSchema);
register('gateway.networking.k8s.io', ['v1', 'v1beta1'], 'HTTPRoute', () => httpRouteSchema);
register('gateway.networking.k8s.io', ['v1', 'v1alpha2'], 'GRPCRoute', () => grpcRouteSchema);
register('policy.linkerd.io', ['v1alpha1'], 'AuthorizationPolicy', () => authorizationPolicySchema);
register('policy.linkerd.io', ['v1alpha1'], 'MeshTLSAuthentication', () => meshTlsSchema);
register('policy.linkerd.io', ['v1alpha1'], 'NetworkAuthentication', () => networkAuthSchema);
register('policy.linkerd.io', ['v1alpha1', 'v1beta1'], 'ServerAuthorization', () => serverAuthorizationSchema);
register('policy.linkerd.io', ['v1alpha1'], 'HTTPLocalRateLimitPolicy', () => rateLimitSchema);

export function specSchemaFor(apiVersion: string, kind: string): Schema | undefined {
  return SCHEMAS[apiVersion]?.[kind];
}

/** Reports unknown fields, wrong types, missing required fields and values outside an enum. */
export function checkSchema(doc: PolicyDocument, value: JsonValue | undefined, schema: Schema, path: string, out: Diagnostic[]): void {
  const report = (code: string, message: string, at: string) =>
    out.push({ code, severity: 'error', message, origin: doc.locate(at), fieldPath: at });
  // Kubernetes reads an explicit null as an absent field.
  if (value === undefined || value === null) return;
  switch (schema.t) {
    case 'any':
      return;
    case 'str':
      if (typeof value !== 'string') { report(Code.LINKERD_WRONG_TYPE, `${path} must be a string`, path); return; }
      if (schema.enumOf && !schema.enumOf.includes(value)) report(Code.LINKERD_BAD_VALUE, `${path} must be one of ${schema.enumOf.join(', ')} (got "${value}")`, path);
      if (schema.min !== undefined && value.length < schema.min) report(Code.LINKERD_BAD_VALUE, `${path} must not be empty`, path);
      return;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) { report(Code.LINKERD_WRONG_TYPE, `${path} must be an integer`, path); return; }
      if ((schema.min !== undefined && value < schema.min) || (schema.max !== undefined && value > schema.max)) {
        report(Code.LINKERD_BAD_VALUE, `${path} must be between ${schema.min ?? '-inf'} and ${schema.max ?? 'inf'} (got ${value})`, path);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') report(Code.LINKERD_WRONG_TYPE, `${path} must be true or false`, path);
      return;
    case 'intOrStr':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) report(Code.LINKERD_WRONG_TYPE, `${path} must be a port number or a port name`, path);
      return;
    case 'strMap':
      if (!isObject(value)) { report(Code.LINKERD_WRONG_TYPE, `${path} must be a map of strings`, path); return; }
      for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') report(Code.LINKERD_WRONG_TYPE, `${path}[${k}] must be a string`, `${path}[${k}]`);
      return;
    case 'arr':
      if (!Array.isArray(value)) { report(Code.LINKERD_WRONG_TYPE, `${path} must be a list`, path); return; }
      if (schema.min !== undefined && value.length < schema.min) report(Code.LINKERD_TOO_FEW, `${path} needs at least ${schema.min} item(s)`, path);
      if (schema.max !== undefined && value.length > schema.max) report(Code.LINKERD_TOO_MANY, `${path} allows at most ${schema.max} item(s)`, path);
      value.forEach((item, i) => checkSchema(doc, item, schema.of, `${path}[${i}]`, out));
      return;
    case 'obj': {
      if (!isObject(value)) { report(Code.LINKERD_WRONG_TYPE, `${path} must be a mapping`, path); return; }
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.f[k];
        if (!sub) { report(Code.LINKERD_UNKNOWN_FIELD, `unknown field ${path}.${k}`, `${path}.${k}`); continue; }
        checkSchema(doc, v, sub, `${path}.${k}`, out);
      }
      for (const r of schema.req ?? []) if (value[r] === undefined || value[r] === null) report(Code.LINKERD_MISSING_FIELD, `${path}.${r} is required`, path);
      return;
    }
  }
}

export function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
