// Owns the strict structural schema of AuthorizationPolicy and RequestAuthentication (istio/api CRDs),
// in the shared schema language: every unknown field and wrong type is an error (a typo must never widen a policy).

import { objectMetadata as metadata, s, type Shape, type ShapeCodes } from '../../schema.js';
import { Code } from '../../../codes.js';

const { string: str, bool, strings: strList, any, list, object: obj } = s;

const selector = obj({ matchLabels: s.stringMap });
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

/** Istio's codes for the shared schema walker's problems (a null field is a warning: Kubernetes drops it). */
export const istioShapeCodes: ShapeCodes = {
  unknown_field: Code.ISTIO_UNKNOWN_FIELD,
  wrong_type: Code.ISTIO_WRONG_TYPE,
  null_field: Code.ISTIO_NULL_FIELD,
  bad_value: Code.ISTIO_WRONG_TYPE,
  missing_field: Code.ISTIO_MISSING_FIELD,
  too_few: Code.ISTIO_EMPTY_LIST,
  too_many: Code.ISTIO_WRONG_TYPE,
};
