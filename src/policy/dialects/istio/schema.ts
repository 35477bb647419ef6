// Owns the strict structural schema of AuthorizationPolicy and RequestAuthentication (istio/api CRDs):
// every unknown field and wrong type is an error, because a typo must never widen or narrow a policy.

import type { JsonValue } from '../../documents-types.js';
import { closest } from '../../suggest.js';
import { Code } from '../../../codes.js';

export type Shape =
  | { t: 'string' }
  | { t: 'bool' }
  | { t: 'stringMap' }
  | { t: 'list'; of: Shape }
  | { t: 'object'; fields: Record<string, Shape> }
  /** Anything (Kubernetes-managed metadata we never read). */
  | { t: 'any' };

const str: Shape = { t: 'string' };
const bool: Shape = { t: 'bool' };
const strList: Shape = { t: 'list', of: str };
const obj = (fields: Record<string, Shape>): Shape => ({ t: 'object', fields });
const list = (of: Shape): Shape => ({ t: 'list', of });
const any: Shape = { t: 'any' };

const metadata = obj({
  name: str, namespace: str, labels: { t: 'stringMap' }, annotations: { t: 'stringMap' },
  creationTimestamp: any, uid: any, resourceVersion: any, generation: any, generateName: any,
  finalizers: any, ownerReferences: any, managedFields: any, deletionTimestamp: any,
  deletionGracePeriodSeconds: any, selfLink: any,
});

const selector = obj({ matchLabels: { t: 'stringMap' } });
const targetRef = obj({ group: str, kind: str, name: str, namespace: str });

const source = obj({
  principals: strList, notPrincipals: strList,
  requestPrincipals: strList, notRequestPrincipals: strList,
  namespaces: strList, notNamespaces: strList,
  ipBlocks: strList, notIpBlocks: strList,
  remoteIpBlocks: strList, notRemoteIpBlocks: strList,
  serviceAccounts: strList, notServiceAccounts: strList,
  trustDomains: strList, notTrustDomains: strList,
});

const operation = obj({
  hosts: strList, notHosts: strList,
  ports: strList, notPorts: strList,
  methods: strList, notMethods: strList,
  paths: strList, notPaths: strList,
});

const condition = obj({ key: str, values: strList, notValues: strList });

const rule = obj({
  from: list(obj({ source })),
  to: list(obj({ operation })),
  when: list(condition),
});

export const authorizationPolicyShape: Shape = obj({
  apiVersion: str, kind: str, metadata, status: any,
  spec: obj({
    selector, targetRef, targetRefs: list(targetRef),
    rules: list(rule),
    action: str,
    provider: obj({ name: str }),
  }),
});

const jwtRule = obj({
  issuer: str, audiences: strList, jwksUri: str, jwks: str,
  fromHeaders: list(obj({ name: str, prefix: str })),
  fromParams: strList, fromCookies: strList,
  outputPayloadToHeader: str, forwardOriginalToken: bool,
  outputClaimToHeaders: list(obj({ header: str, claim: str })),
  timeout: str, spaceDelimitedClaims: strList,
});

export const requestAuthenticationShape: Shape = obj({
  apiVersion: str, kind: str, metadata, status: any,
  spec: obj({ selector, targetRef, targetRefs: list(targetRef), jwtRules: list(jwtRule) }),
});

export interface ShapeProblem {
  code: typeof Code.ISTIO_UNKNOWN_FIELD | typeof Code.ISTIO_WRONG_TYPE | typeof Code.ISTIO_NULL_FIELD;
  fieldPath: string;
  message: string;
}

function typeName(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Walks `value` against `shape`; collects every problem. Null fields are dropped as Kubernetes does. */
export function checkShape(value: JsonValue, shape: Shape, path: string, out: ShapeProblem[]): void {
  const at = (suffix: string) => (path === '' ? suffix : suffix.startsWith('[') ? path + suffix : `${path}.${suffix}`);
  if (shape.t === 'any') return;
  if (value === null) {
    out.push({ code: Code.ISTIO_NULL_FIELD, fieldPath: path, message: `${path} is null and is ignored (Kubernetes drops null fields); remove it or give it a value` });
    return;
  }
  switch (shape.t) {
    case 'string':
      if (typeof value !== 'string') out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: path, message: `${path} must be a string, found ${typeName(value)} (quote numbers: "8080")` });
      return;
    case 'bool':
      if (typeof value !== 'boolean') out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: path, message: `${path} must be a boolean, found ${typeName(value)}` });
      return;
    case 'stringMap':
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: path, message: `${path} must be a map of strings, found ${typeName(value)}` });
        return;
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: `${path}[${k}]`, message: `${path}[${k}] must be a string, found ${typeName(v)}` });
      }
      return;
    case 'list':
      if (!Array.isArray(value)) {
        out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: path, message: `${path} must be a list, found ${typeName(value)}` });
        return;
      }
      value.forEach((item, i) => {
        if (item === null) out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: `${path}[${i}]`, message: `${path}[${i}] is null; list entries must have a value` });
        else checkShape(item, shape.of, at(`[${i}]`), out);
      });
      return;
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.push({ code: Code.ISTIO_WRONG_TYPE, fieldPath: path, message: `${path} must be an object, found ${typeName(value)}` });
        return;
      }
      for (const [k, v] of Object.entries(value)) {
        const sub = shape.fields[k];
        if (!sub) {
          const known = Object.keys(shape.fields).filter((f) => shape.fields[f]?.t !== 'any');
          const hint = suggest(k, known);
          out.push({
            code: Code.ISTIO_UNKNOWN_FIELD, fieldPath: at(k),
            message: `unknown field "${k}"${path ? ` in ${path}` : ''}${hint ? `; did you mean "${hint}"?` : ''} (known: ${known.join(', ')})`,
          });
          continue;
        }
        checkShape(v, sub, at(k), out);
      }
      return;
  }
}

/** Closest known name by edit distance (<= 2), for "did you mean". */
function suggest(name: string, known: string[]): string | undefined {
  return closest(name, known, (k) => [k]);
}
