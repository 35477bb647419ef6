// Owns lowering one AuthorizationPolicy rule to a Matcher: one small converter per field and `when` key,
// HTTP-only fields dropped on TCP as Istio does. Follows istio/istio pilot/pkg/security/authz/model.

import type { JsonValue } from '../../documents-types.js';
import type { Matcher } from '../../ir.js';
import type { IstioAction } from './types.js';
import { escapeRegex, parsePort, pathForm, stringForm } from './strings.js';

export interface RuleEnv {
  /** Namespace of the policy: bare `serviceAccounts` entries live here. */
  policyNamespace: string;
  /** Local trust domain first, then the aliases. */
  trustDomains: string[];
  /** CompileOptions.denyPathsIgnoreCase (PC-4). */
  denyPathsIgnoreCase?: boolean;
  /** CompileOptions.denyHostsAnyPort. */
  denyHostsAnyPort?: boolean;
}

type Obj = { [key: string]: JsonValue };

export function isObj(v: JsonValue | undefined): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The string entries of a list field (wrong types were reported by the schema). */
export function strings(v: JsonValue | undefined): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function or(of: Matcher[]): Matcher {
  if (of.length === 0) return { type: 'none' };
  if (of.some((m) => m.type === 'any')) return { type: 'any' };
  return of.length === 1 ? (of[0] as Matcher) : { type: 'or', of };
}

export function and(of: Matcher[]): Matcher {
  const kept = of.filter((m) => m.type !== 'any');
  if (kept.length === 0) return { type: 'any' };
  return kept.length === 1 ? (kept[0] as Matcher) : { type: 'and', of: kept };
}

// --- value converters ----------------------------------------------------------------------------

/** TD ReplaceTrustDomainAliases: local TD, an alias or literal `cluster.local` means "every local TD". */
export function expandTrustDomains(principal: string, trustDomains: string[]): string[] {
  const nsAt = principal.indexOf('/ns/');
  if (nsAt < 0) return [principal];
  const td = principal.slice(0, nsAt);
  if (td.includes('*') || td.includes('/')) return [principal];
  if (td !== 'cluster.local' && !trustDomains.includes(td)) return [principal];
  const rest = principal.slice(nsAt);
  const out: string[] = [];
  for (const local of trustDomains) if (!out.includes(local + rest)) out.push(local + rest);
  return out;
}

function principalMatchers(values: string[], env: RuleEnv): Matcher[] {
  return values.flatMap((v) => expandTrustDomains(v, env.trustDomains)).map((v): Matcher => ({ type: 'peer.principal', match: stringForm(v) }));
}

// `namespaces`: regex `.*/ns/<ns>/.*` over the principal, every `*` inside becoming `.*`.
function namespaceMatcher(ns: string): Matcher {
  const inner = ns.split('*').map(escapeRegex).join('.*');
  return { type: 'peer.principal', match: { kind: 'regex', pattern: `.*/ns/${inner}/.*` } };
}

/** `serviceAccounts`: `ns/sa` or bare `sa` (policy namespace), Istio's regex without the scheme, dots escaped. */
export function serviceAccountMatcher(value: string, env: RuleEnv): Matcher {
  const slash = value.indexOf('/');
  const ns = slash < 0 ? env.policyNamespace : value.slice(0, slash);
  const sa = slash < 0 ? value : value.slice(slash + 1);
  return { type: 'peer.principal', match: { kind: 'regex', pattern: `.+/ns/${escapeRegex(ns)}/(.+/|)sa/${escapeRegex(sa)}(/.+)?` } };
}

/** `trustDomains`: the part of the principal before the first `/`, in the generic string form. */
function trustDomainMatcher(value: string): Matcher {
  let td: string;
  if (value === '*') td = '[^/]+';
  else if (value.startsWith('*')) td = `[^/]*${escapeRegex(value.slice(1))}`;
  else if (value.endsWith('*')) td = `${escapeRegex(value.slice(0, -1))}[^/]*`;
  else td = escapeRegex(value);
  return { type: 'peer.principal', match: { kind: 'regex', pattern: `${td}(/.*)?` } };
}

/** `requestPrincipals` / `request.auth.principal`: split at the LAST `/`, iss and sub matched separately. */
export function requestPrincipalMatcher(value: string): Matcher {
  if (value === '*') return { type: 'jwt.principal', issuer: { kind: 'present' }, subject: { kind: 'present' } };
  const slash = value.lastIndexOf('/');
  if (slash < 0) {
    // `iss/sub` always contains a `/`: only a suffix or prefix form can still match across it.
    if (value.startsWith('*')) return { type: 'jwt.principal', issuer: { kind: 'regex', pattern: '.*' }, subject: { kind: 'suffix', value: value.slice(1) } };
    if (value.endsWith('*')) return { type: 'jwt.principal', issuer: { kind: 'prefix', value: value.slice(0, -1) }, subject: { kind: 'regex', pattern: '.*' } };
    return { type: 'none' };
  }
  return { type: 'jwt.principal', issuer: stringForm(value.slice(0, slash)), subject: stringForm(value.slice(slash + 1)) };
}

function hostMatcher(value: string): Matcher {
  return { type: 'request.host', match: stringForm(value.toLowerCase(), true) };
}

/** True when an Istio `hosts` value names a port (`api:8080`, `api:*`, `[::1]:443`). */
function hostValueHasPort(value: string): boolean {
  const afterLiteral = value.startsWith('[') ? value.slice(value.indexOf(']') + 1) : value;
  return afterLiteral.includes(':');
}

/**
 * Secure reading of a DENY `hosts` value without a port: that host on any port, its trailing dot dropped
 * (the request side is already lower-cased and dot-stripped). Values with a port stay exact.
 */
function denyHostMatcher(value: string): Matcher {
  if (hostValueHasPort(value)) return hostMatcher(value);
  const bare = value.length > 1 && value.endsWith('.') ? value.slice(0, -1) : value;
  return { type: 'request.host', match: stringForm(bare.toLowerCase(), true), anyPort: true };
}

// --- when keys -----------------------------------------------------------------------------------

export type ConditionKind =
  | { kind: 'header'; name: string }
  | { kind: 'claim'; path: string[] }
  | { kind: 'experimental'; key: string }
  | { kind: 'simple'; key: string };

export const simpleConditionKeys = new Set([
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'source.trustDomain',
  'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter',
  'destination.ip', 'destination.port', 'connection.sni',
]);
export const removedConditionKeys = ['destination.labels[', 'destination.namespace', 'destination.name', 'destination.user'];

/** `a][b` inside `request.auth.claims[...]` -> ['a','b']; dots inside brackets are literal. */
export function parseClaimPath(inner: string): string[] {
  return inner.split('][');
}

/** Classifies a `when.key`; undefined = unknown or malformed (validation reports it). */
export function classifyConditionKey(key: string): ConditionKind | undefined {
  if (key.startsWith('request.headers[')) {
    if (!key.endsWith(']') || key.length <= 'request.headers[]'.length) return undefined;
    return { kind: 'header', name: key.slice('request.headers['.length, -1) };
  }
  if (key.startsWith('request.auth.claims[')) {
    if (!key.endsWith(']') || key.length <= 'request.auth.claims[]'.length) return undefined;
    const path = parseClaimPath(key.slice('request.auth.claims['.length, -1));
    return path.some((p) => p === '' || p.includes('[') || p.includes(']')) ? undefined : { kind: 'claim', path };
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    return /^experimental\.envoy\.filters\.[^[\]]+(\[[^[\]]+\])+$/.test(key) ? { kind: 'experimental', key } : undefined;
  }
  return simpleConditionKeys.has(key) ? { kind: 'simple', key } : undefined;
}

export function isHttpOnlyCondition(kind: ConditionKind): boolean {
  if (kind.kind === 'header' || kind.kind === 'claim') return true;
  return kind.kind === 'simple' && kind.key.startsWith('request.');
}

/**
 * PC-8: how a header condition reads a repeated or `,`-listed header. A condition that can only widen the
 * action when it matches more (positive values of DENY/AUDIT/CUSTOM, `notValues` of ALLOW) matches when
 * any element does; the others must hold for every element, so a list can never smuggle a value past.
 */
type Elements = 'any' | 'all';

function conditionValueMatcher(kind: ConditionKind, value: string, env: RuleEnv, elements: Elements): Matcher[] {
  switch (kind.kind) {
    case 'header': return [{ type: 'request.header', name: kind.name.toLowerCase(), match: stringForm(value), elements }];
    case 'claim': return [{ type: 'jwt.claim', path: kind.path, match: stringForm(value) }];
    case 'experimental': return [{ type: 'unsupported', key: kind.key }];
    case 'simple':
      switch (kind.key) {
        case 'source.ip': return [{ type: 'source.ip', cidrs: [value] }];
        case 'remote.ip': return [{ type: 'remote.ip', cidrs: [value] }];
        case 'destination.ip': return [{ type: 'destination.ip', cidrs: [value] }];
        case 'destination.port': {
          const p = parsePort(value);
          return p === undefined ? [] : [{ type: 'destination.port', ports: [p] }];
        }
        case 'connection.sni': return [{ type: 'connection.sni', match: stringForm(value) }];
        case 'source.principal': return principalMatchers([value], env);
        case 'source.namespace': return [namespaceMatcher(value)];
        case 'source.serviceAccount': return [serviceAccountMatcher(value, env)];
        case 'source.trustDomain': return [trustDomainMatcher(value)];
        case 'request.auth.principal': return [requestPrincipalMatcher(value)];
        case 'request.auth.audiences': return [{ type: 'jwt.claim', path: ['aud'], match: stringForm(value) }];
        case 'request.auth.presenter': return [{ type: 'jwt.claim', path: ['azp'], match: stringForm(value) }];
      }
  }
  return [];
}

// --- fields --------------------------------------------------------------------------------------

interface FieldDef {
  httpOnly: boolean;
  lower: (values: string[], env: RuleEnv) => Matcher[];
}

const cidrs = (type: 'source.ip' | 'remote.ip') => (values: string[]): Matcher[] => (values.length ? [{ type, cidrs: values }] : []);

const sourceFields: Record<string, FieldDef> = {
  principals: { httpOnly: false, lower: principalMatchers },
  requestPrincipals: { httpOnly: true, lower: (vs) => vs.map(requestPrincipalMatcher) },
  namespaces: { httpOnly: false, lower: (vs) => vs.map(namespaceMatcher) },
  ipBlocks: { httpOnly: false, lower: cidrs('source.ip') },
  remoteIpBlocks: { httpOnly: false, lower: cidrs('remote.ip') },
  serviceAccounts: { httpOnly: false, lower: (vs, env) => vs.map((v) => serviceAccountMatcher(v, env)) },
  trustDomains: { httpOnly: false, lower: (vs) => vs.map(trustDomainMatcher) },
};

const operationFields: Record<string, FieldDef> = {
  hosts: { httpOnly: true, lower: (vs) => vs.map(hostMatcher) },
  ports: {
    httpOnly: false,
    lower: (vs) => {
      const ports = vs.map(parsePort).filter((p): p is number => p !== undefined);
      return ports.length ? [{ type: 'destination.port', ports }] : [];
    },
  },
  methods: { httpOnly: true, lower: (vs) => vs.map((v): Matcher => ({ type: 'request.method', match: stringForm(v) })) },
  paths: { httpOnly: true, lower: (vs) => vs.map((v): Matcher => ({ type: 'request.path', match: pathForm(v) })) },
};

function notName(field: string): string {
  return `not${field[0]?.toUpperCase() ?? ''}${field.slice(1)}`;
}

/** A field or its `not` form, with the definition that lowers it. */
interface FieldName { field: string; name: string; negate: boolean; def: FieldDef }

/** Each field and its `not` form, in lowering order (built once: the names are not rebuilt per rule). */
function fieldNames(defs: Record<string, FieldDef>): FieldName[] {
  return Object.entries(defs).flatMap(([field, def]) => [{ field, name: field, negate: false, def }, { field, name: notName(field), negate: true, def }]);
}
const sourceFieldNames = fieldNames(sourceFields);
const operationFieldNames = fieldNames(operationFields);

export const httpOnlySourceFields = ['requestPrincipals', 'notRequestPrincipals'];
export const httpOnlyOperationFields = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];

export interface LowerMode {
  tcp: boolean;
  action: IstioAction;
}

class DropRule extends Error {}
// One instance, thrown by identity: a new Error per dropped rule captured a stack trace each time (compile cost).
const DROP_RULE = new DropRule('rule dropped from this chain');

function ignorePathCase(m: Matcher): Matcher {
  if (m.type === 'or') return { type: 'or', of: m.of.map(ignorePathCase) };
  if (m.type !== 'request.path') return m;
  const pm = m.match;
  if (pm.kind === 'exact' || pm.kind === 'prefix' || pm.kind === 'suffix' || pm.kind === 'template') return { type: 'request.path', match: { ...pm, ignoreCase: true } };
  return m;
}

/** AND of the fields of one source/operation; HTTP-only fields throw DropRule (ALLOW) or vanish (others) on TCP. */
function lowerFields(body: Obj, names: readonly FieldName[], env: RuleEnv, mode: LowerMode): Matcher {
  const parts: Matcher[] = [];
  for (const { field, name, negate, def } of names) {
    const values = strings(body[name]);
    if (values.length === 0) continue;
    if (mode.tcp && def.httpOnly) {
      if (mode.action === 'ALLOW') throw DROP_RULE;
      continue;
    }
    const widenDenyHosts = field === 'hosts' && !negate && mode.action === 'DENY' && env.denyHostsAnyPort === true;
    let m = or(widenDenyHosts ? values.map(denyHostMatcher) : def.lower(values, env));
    // PC-4 hardening: case-insensitive positive DENY paths only; anything else would narrow a deny.
    if (field === 'paths' && !negate && mode.action === 'DENY' && env.denyPathsIgnoreCase) m = ignorePathCase(m);
    parts.push(negate ? { type: 'not', of: m } : m);
  }
  return and(parts);
}

/**
 * rule = OR(from) AND OR(to) AND AND(when). Returns undefined when the rule is dropped from this chain
 * (ALLOW rule with an HTTP-only field on TCP: a narrower allow, never a wider one).
 */
export function lowerRule(rule: JsonValue, env: RuleEnv, mode: LowerMode): Matcher | undefined {
  if (!isObj(rule)) return { type: 'any' };
  try {
    const parts: Matcher[] = [];
    if (Array.isArray(rule.from)) {
      parts.push(or(rule.from.map((f) => lowerFields(isObj(f) && isObj(f.source) ? f.source : {}, sourceFieldNames, env, mode))));
    }
    if (Array.isArray(rule.to)) {
      parts.push(or(rule.to.map((t) => lowerFields(isObj(t) && isObj(t.operation) ? t.operation : {}, operationFieldNames, env, mode))));
    }
    if (Array.isArray(rule.when)) {
      for (const c of rule.when) {
        if (!isObj(c) || typeof c.key !== 'string') continue;
        const kind = classifyConditionKey(c.key);
        if (!kind) continue;
        if (mode.tcp && isHttpOnlyCondition(kind)) {
          if (mode.action === 'ALLOW') throw DROP_RULE;
          continue;
        }
        const values = strings(c.values);
        const notValues = strings(c.notValues);
        const denyLike = mode.action !== 'ALLOW';
        if (values.length) parts.push(or(values.flatMap((v) => conditionValueMatcher(kind, v, env, denyLike ? 'any' : 'all'))));
        if (notValues.length) parts.push({ type: 'not', of: or(notValues.flatMap((v) => conditionValueMatcher(kind, v, env, denyLike ? 'all' : 'any'))) });
      }
    }
    return and(parts);
  } catch (e) {
    if (e instanceof DropRule) return undefined;
    throw e;
  }
}
