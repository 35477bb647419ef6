// Owns Istio scope selection (root + workload namespace, selector, targetRefs) and lowering of the selected
// documents to tiers (tiers.ts) + JwtProviderSpec[]. Follows istio/istio pilot/pkg/model/authorization.go, builder.go.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions, JwtHeaderLocation, JwtProviderSpec, PolicyRef } from '../../ir.js';
import { selectorMatches } from '../../selector.js';
import type { DialectOutput } from '../types.js';
import { isObj, lowerRule, strings, type RuleEnv } from './rules.js';
import { parseGoDuration } from './strings.js';
import { istioTiers } from './tiers.js';
import type { IstioAction, IstioChain, IstioProgram, IstioRule } from './types.js';
import { isDryRun } from './validate.js';
import { Code } from '../../../codes.js';

const DEFAULT_JWKS_TIMEOUT_MS = 5000;

export function policyNamespace(doc: PolicyDocument): string {
  return doc.metadata.namespace ?? 'default';
}

function specOf(doc: PolicyDocument): { [k: string]: JsonValue } {
  return isObj(doc.body.spec) ? doc.body.spec : {};
}

type Scope = { applies: true } | { applies: false; why?: Diagnostic };

/** ATTACH: root or workload namespace, selector ⊆ labels, and never a targetRef'd policy on a sidecar. */
function scopeOf(doc: PolicyDocument, options: CompileOptions): Scope {
  const ns = policyNamespace(doc);
  if (ns !== options.rootNamespace && ns !== options.workload.namespace) return { applies: false };
  const spec = specOf(doc);
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) {
    const fieldPath = spec.targetRef !== undefined ? 'spec.targetRef' : 'spec.targetRefs';
    return {
      applies: false,
      why: {
        code: Code.ISTIO_TARGETREF_IGNORED, severity: 'info', origin: doc.locate(fieldPath), fieldPath,
        message: `${doc.kind} ${ns}/${doc.metadata.name} uses ${fieldPath.slice(5)}, which only gateways and waypoints honor; a sidecar ignores it`,
      },
    };
  }
  return selectorMatches(spec.selector, options.workload.labels) ? { applies: true } : { applies: false };
}

function emptyChain(): IstioChain {
  return { custom: [], deny: [], allow: [], audit: [], hasEnforcedAllow: false, hasShadowAllow: false };
}

function chainList(chain: IstioChain, action: IstioAction): IstioRule[] {
  switch (action) {
    case 'ALLOW': return chain.allow;
    case 'DENY': return chain.deny;
    case 'AUDIT': return chain.audit;
    case 'CUSTOM': return chain.custom;
  }
}

export function ruleId(namespace: string, name: string, index: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${index}]`;
}

function lowerAuthorizationPolicy(doc: PolicyDocument, options: CompileOptions, program: IstioProgram): void {
  const spec = specOf(doc);
  const action = (typeof spec.action === 'string' ? spec.action : 'ALLOW') as IstioAction;
  const ns = policyNamespace(doc);
  const ref: PolicyRef = { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: ns, name: doc.metadata.name };
  const dryRun = isDryRun(doc);
  const env: RuleEnv = { policyNamespace: ns, trustDomains: [options.workload.trustDomain, ...options.workload.trustDomainAliases], denyPathsIgnoreCase: options.denyPathsIgnoreCase === true, denyHostsAnyPort: options.denyHostsAnyPort === true };
  const provider = action === 'CUSTOM' && isObj(spec.provider) && typeof spec.provider.name === 'string' ? spec.provider.name : undefined;
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  for (const [chainName, chain] of [['http', program.http], ['tcp', program.tcp]] as const) {
    if (action === 'ALLOW') {
      // An ALLOW policy exists for the workload even when all its rules drop (allow-nothing).
      if (dryRun) chain.hasShadowAllow = true;
      else chain.hasEnforcedAllow = true;
    }
    rules.forEach((rule, index) => {
      const match = lowerRule(rule, env, { tcp: chainName === 'tcp', action });
      if (!match) return;
      const lowered: IstioRule = { id: ruleId(ns, doc.metadata.name, index), policy: ref, index, action, dryRun, match };
      if (provider !== undefined) lowered.provider = provider;
      chainList(chain, action).push(lowered);
    });
  }
}

function sortChain(chain: IstioChain): void {
  // Envoy keeps RBAC policies in a map ordered by name: plain lexicographic order of the ids.
  for (const list of [chain.custom, chain.deny, chain.allow, chain.audit]) list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function lowerRequestAuthentication(doc: PolicyDocument, options: CompileOptions): JwtProviderSpec[] {
  const spec = specOf(doc);
  const ref: PolicyRef = { dialect: 'istio', kind: 'RequestAuthentication', namespace: policyNamespace(doc), name: doc.metadata.name };
  const rules = Array.isArray(spec.jwtRules) ? spec.jwtRules : [];
  return rules.filter(isObj).map((rule): JwtProviderSpec => {
    const str = (v: JsonValue | undefined) => (typeof v === 'string' ? v : '');
    const fromHeaders: JwtHeaderLocation[] = (Array.isArray(rule.fromHeaders) ? rule.fromHeaders : [])
      .filter(isObj).map((h) => ({ name: str(h.name).toLowerCase(), prefix: str(h.prefix) }));
    const fromParams = strings(rule.fromParams);
    const fromCookies = strings(rule.fromCookies);
    const noLocation = fromHeaders.length === 0 && fromParams.length === 0 && fromCookies.length === 0;
    const timeout = typeof rule.timeout === 'string' ? parseGoDuration(rule.timeout) : undefined;
    const jwks: JwtProviderSpec['jwks'] = str(rule.jwks) !== ''
      ? { kind: 'inline', json: str(rule.jwks) }
      : str(rule.jwksUri) !== '' ? { kind: 'uri', uri: str(rule.jwksUri) } : { kind: 'none' };
    const outputPayload = str(rule.outputPayloadToHeader);
    return {
      policy: ref,
      issuer: str(rule.issuer),
      audiences: strings(rule.audiences),
      jwks,
      fromHeaders: noLocation ? [{ name: 'authorization', prefix: 'Bearer ' }] : fromHeaders,
      // Istio's defaults include `?access_token=`; the secure reading keeps only the header (URLs get logged).
      fromParams: noLocation ? (options.jwtDefaultQueryParam === false ? [] : ['access_token']) : fromParams,
      fromCookies,
      forwardOriginalToken: rule.forwardOriginalToken === true,
      outputPayloadToHeader: outputPayload === '' ? undefined : outputPayload,
      outputClaimToHeaders: (Array.isArray(rule.outputClaimToHeaders) ? rule.outputClaimToHeaders : [])
        .filter(isObj).map((h) => ({ header: str(h.header), claim: str(h.claim) })),
      spaceDelimitedClaims: strings(rule.spaceDelimitedClaims),
      timeoutMs: timeout !== undefined && timeout > 0 ? timeout : DEFAULT_JWKS_TIMEOUT_MS,
      requireExpiration: options.jwtRequireExpiration === true && !(options.jwtExpirationOptionalIssuers ?? []).includes(str(rule.issuer)),
    };
  });
}

export interface IstioLowering {
  diagnostics: Diagnostic[];
  /** Undefined when no AuthorizationPolicy selects the workload (then Istio has no say). */
  istio: IstioProgram | undefined;
  jwtProviders: JwtProviderSpec[];
  applied: Set<PolicyDocument>;
}

/** The dialect's contract: the selected documents as tiers (tiers.ts) plus the JWT providers. */
export function lowerIstio(docs: PolicyDocument[], options: CompileOptions): { diagnostics: Diagnostic[]; output: DialectOutput } {
  const l = lowerIstioDocuments(docs, options);
  const output: DialectOutput = { applied: l.applied, tiers: l.istio ? istioTiers(l.istio, options.customProviders) : [] };
  if (l.jwtProviders.length > 0) output.jwtProviders = l.jwtProviders;
  return { diagnostics: l.diagnostics, output };
}

/** Scope selection and lowering per attribute key, into Envoy-shaped chains. */
export function lowerIstioDocuments(docs: PolicyDocument[], options: CompileOptions): IstioLowering {
  const diagnostics: Diagnostic[] = [];
  const applied = new Set<PolicyDocument>();
  const program: IstioProgram = { http: emptyChain(), tcp: emptyChain() };
  let anyAuthz = false;
  const providers: JwtProviderSpec[] = [];
  const customProviders = new Set<string>();
  for (const doc of docs) {
    if (doc.kind !== 'AuthorizationPolicy' && doc.kind !== 'RequestAuthentication') continue;
    const scope = scopeOf(doc, options);
    if (!scope.applies) {
      if (scope.why) diagnostics.push(scope.why);
      continue;
    }
    applied.add(doc);
    if (doc.kind === 'RequestAuthentication') {
      providers.push(...lowerRequestAuthentication(doc, options));
      continue;
    }
    anyAuthz = true;
    lowerAuthorizationPolicy(doc, options, program);
    const spec = specOf(doc);
    if (spec.action === 'CUSTOM' && isObj(spec.provider) && typeof spec.provider.name === 'string') {
      const name = spec.provider.name;
      if (!options.customProviders.includes(name) && !customProviders.has(name)) {
        diagnostics.push({
          code: Code.ISTIO_CUSTOM_PROVIDER_UNKNOWN, severity: 'warning', origin: doc.locate('spec.provider.name'), fieldPath: 'spec.provider.name',
          message: `CUSTOM provider "${name}" is not configured in Portcullis: requests matching this policy are denied (fail closed)`,
        });
      }
      customProviders.add(name);
    }
  }
  sortChain(program.http);
  sortChain(program.tcp);
  // Stable by issuer: RequestAuthentications from the root and the workload namespace merge (AUTHN).
  const sortedProviders = providers
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.issuer < b.p.issuer ? -1 : a.p.issuer > b.p.issuer ? 1 : a.i - b.i))
    .map((x) => x.p);
  return { diagnostics, istio: anyAuthz ? program : undefined, jwtProviders: sortedProviders, applied };
}
