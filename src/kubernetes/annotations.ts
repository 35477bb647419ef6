// Owns the per-pod `portcullis.dev/*` annotations: their names, defaults and validation into PodSettings.
// Every problem names the annotation and the offending value, so `inject` and the webhook can refuse clearly.

import { parseSpiffeId } from '../identity/spiffe.js';
import { parseDuration } from '../config/load.js';
import { linkerdDefaultPolicies } from '../config/schema.js';

export const annotationPrefix = 'portcullis.dev/';

/** Every annotation the injector reads; an unknown `portcullis.dev/` key is refused (a typo must not be ignored). */
export const annotations = {
  inject: `${annotationPrefix}inject`,
  inboundPorts: `${annotationPrefix}inbound-ports`,
  upstreamPort: `${annotationPrefix}upstream-port`,
  mode: `${annotationPrefix}mode`,
  defaultPolicy: `${annotationPrefix}default-policy`,
  outbound: `${annotationPrefix}outbound`,
  policies: `${annotationPrefix}policies`,
  certs: `${annotationPrefix}certs`,
  capture: `${annotationPrefix}capture`,
  drainDelay: `${annotationPrefix}drain-delay`,
  /** Written by the injector: the version that injected the pod. */
  injected: `${annotationPrefix}injected`,
} as const;

export interface InboundPort {
  /** Sidecar mTLS port (what the Service targets). */
  listenPort: number;
  /** App port on 127.0.0.1. */
  upstreamPort: number;
  protocol: 'http' | 'h2c' | 'tcp';
}

export interface OutboundDestination {
  /** Loopback port the app calls in plaintext. */
  localPort: number;
  /** `https://host:port` of the destination sidecar. */
  target: string;
  expectIdentity: string;
}

export type CertSource =
  | { kind: 'secret'; secretName: string }
  /** cert-manager's csi-driver-spiffe (driver spiffe.csi.cert-manager.io): tls.crt, tls.key, ca.crt per pod. */
  | { kind: 'csi-cert-manager' };

export interface PodSettings {
  inbound: InboundPort[];
  mode: 'enforce' | 'audit';
  defaultPolicy: string | undefined;
  outbound: OutboundDestination[];
  /** ConfigMaps in the pod's namespace holding its policies. */
  policyConfigMaps: string[];
  certs: CertSource;
  capture: boolean;
  /** `--drain-delay` for the sidecar, as written (e.g. `5s`); undefined = the run default. */
  drainDelay: string | undefined;
}

export interface SettingsDefaults {
  /** Transparent capture unless the pod says otherwise. */
  capture: boolean;
  mode: 'enforce' | 'audit';
  policyConfigMap: string;
}

export interface AnnotationProblem {
  annotation: string;
  message: string;
}

const sidecarPortsReserved = new Set([15000, 15021]);

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function listOf(value: string): string[] {
  return value.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== '');
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes object names (ConfigMap, Secret): DNS-1123 subdomain. */
function isObjectName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((l) => dnsLabel.test(l));
}

/**
 * Reads the pod's annotations into settings. `serviceAccount` names the default Secret (`<sa>-svid`).
 * Returns every problem at once, so a user fixes them in one pass.
 */
export function readPodSettings(podAnnotations: Record<string, string>, serviceAccount: string, defaults: SettingsDefaults): { settings: PodSettings } | { problems: AnnotationProblem[] } {
  const problems: AnnotationProblem[] = [];
  const bad = (annotation: string, message: string): void => { problems.push({ annotation, message }); };
  const known = new Set<string>(Object.values(annotations));
  for (const key of Object.keys(podAnnotations)) {
    if (key.startsWith(annotationPrefix) && !known.has(key)) {
      bad(key, `unknown annotation; known ones: ${[...known].filter((k) => k !== annotations.injected).join(', ')}`);
    }
  }
  const get = (name: string): string | undefined => {
    const v = podAnnotations[name];
    return v === undefined ? undefined : v.trim();
  };

  const inject = get(annotations.inject);
  if (inject !== undefined && inject !== 'true' && inject !== 'false') bad(annotations.inject, `must be "true" or "false", not "${inject}"`);

  let upstreamPort = 8080;
  const upstreamText = get(annotations.upstreamPort);
  if (upstreamText !== undefined) {
    const p = parsePort(upstreamText);
    if (p === undefined) bad(annotations.upstreamPort, `must be a port number 1-65535, not "${upstreamText}"`);
    else upstreamPort = p;
  }

  let inbound: InboundPort[] = [{ listenPort: 8443, upstreamPort, protocol: 'http' }];
  const inboundText = get(annotations.inboundPorts);
  if (inboundText !== undefined) {
    if (upstreamText !== undefined) bad(annotations.upstreamPort, `conflicts with ${annotations.inboundPorts}: give the app ports in one of them`);
    inbound = [];
    const entries = listOf(inboundText);
    if (entries.length === 0) bad(annotations.inboundPorts, 'is empty; expected LISTEN=[http:|h2c:|tcp:]APP_PORT, e.g. "8443=8080,9443=h2c:9090"');
    for (const entry of entries) {
      const m = /^(\d+)=(?:(http|h2c|tcp):)?(\d+)$/.exec(entry);
      const listenPort = m ? parsePort(m[1] as string) : undefined;
      const appPort = m ? parsePort(m[3] as string) : undefined;
      if (!m || listenPort === undefined || appPort === undefined) {
        bad(annotations.inboundPorts, `entry "${entry}" must be LISTEN=[http:|h2c:|tcp:]APP_PORT with ports 1-65535, e.g. "8443=8080" or "9443=h2c:9090"`);
        continue;
      }
      inbound.push({ listenPort, upstreamPort: appPort, protocol: (m[2] as InboundPort['protocol'] | undefined) ?? 'http' });
    }
  }

  const modeText = get(annotations.mode);
  let mode = defaults.mode;
  if (modeText !== undefined) {
    if (modeText === 'enforce' || modeText === 'audit') mode = modeText;
    else bad(annotations.mode, `must be "enforce" or "audit", not "${modeText}"`);
  }

  const defaultPolicy = get(annotations.defaultPolicy);
  if (defaultPolicy !== undefined && !(linkerdDefaultPolicies as readonly string[]).includes(defaultPolicy)) {
    bad(annotations.defaultPolicy, `must be one of ${linkerdDefaultPolicies.join(', ')}, not "${defaultPolicy}"`);
  }

  const outbound: OutboundDestination[] = [];
  const outboundText = get(annotations.outbound);
  if (outboundText !== undefined) {
    for (const entry of listOf(outboundText)) {
      const m = /^(\d+)=(https:\/\/[^@\s]+)@(spiffe:\/\/\S+)$/.exec(entry);
      const localPort = m ? parsePort(m[1] as string) : undefined;
      if (!m || localPort === undefined) {
        bad(annotations.outbound, `entry "${entry}" must be LOCAL_PORT=https://HOST:PORT@spiffe://TRUST_DOMAIN/PATH, e.g. "15001=https://service-b.demo.svc.cluster.local:8443@spiffe://cluster.local/ns/demo/sa/service-b"`);
        continue;
      }
      let url: URL | undefined;
      try { url = new URL(m[2] as string); } catch { url = undefined; }
      if (!url || url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
        bad(annotations.outbound, `entry "${entry}": the target must be https://HOST:PORT with an explicit port and nothing after it`);
        continue;
      }
      const id = parseSpiffeId(m[3] as string);
      if (!id.ok) { bad(annotations.outbound, `entry "${entry}": ${id.error}`); continue; }
      outbound.push({ localPort, target: `https://${url.host}`, expectIdentity: m[3] as string });
    }
  }

  let policyConfigMaps = [defaults.policyConfigMap];
  const policiesText = get(annotations.policies);
  if (policiesText !== undefined) {
    policyConfigMaps = listOf(policiesText);
    if (policyConfigMaps.length === 0) bad(annotations.policies, 'is empty; expected ConfigMap names, e.g. "portcullis-policies,payments-policies"');
    for (const name of policyConfigMaps) if (!isObjectName(name)) bad(annotations.policies, `"${name}" is not a valid ConfigMap name (lowercase letters, digits, '-' and '.')`);
    if (new Set(policyConfigMaps).size !== policyConfigMaps.length) bad(annotations.policies, 'names a ConfigMap twice');
  }

  let certs: CertSource = { kind: 'secret', secretName: `${serviceAccount}-svid` };
  const certsText = get(annotations.certs);
  if (certsText !== undefined) {
    if (certsText === 'csi:cert-manager') certs = { kind: 'csi-cert-manager' };
    else if (certsText.startsWith('secret:') && isObjectName(certsText.slice('secret:'.length))) certs = { kind: 'secret', secretName: certsText.slice('secret:'.length) };
    else bad(annotations.certs, `must be "secret:NAME" (a Secret with tls.crt, tls.key, ca.crt) or "csi:cert-manager" (csi-driver-spiffe), not "${certsText}"`);
  }

  let capture = defaults.capture;
  const captureText = get(annotations.capture);
  if (captureText !== undefined) {
    if (captureText === 'iptables') capture = true;
    else if (captureText === 'none') capture = false;
    else bad(annotations.capture, `must be "iptables" (transparent inbound capture, needs NET_ADMIN) or "none", not "${captureText}"`);
  }

  const drainDelay = get(annotations.drainDelay);
  if (drainDelay !== undefined && parseDuration(drainDelay) === undefined) bad(annotations.drainDelay, `must be a duration such as 5s or 500ms, not "${drainDelay}"`);

  // Port clashes inside the sidecar: every listener needs its own port.
  const used = new Map<number, string>();
  const claim = (port: number, what: string, annotation: string): void => {
    const prior = used.get(port);
    if (prior !== undefined) bad(annotation, `port ${port} is used twice (${prior} and ${what})`);
    else if (sidecarPortsReserved.has(port)) bad(annotation, `port ${port} is reserved for the sidecar's admin (15000) and status (15021) listeners`);
    else used.set(port, what);
  };
  for (const i of inbound) claim(i.listenPort, `inbound listener ${i.listenPort}`, inboundText !== undefined ? annotations.inboundPorts : annotations.upstreamPort);
  for (const o of outbound) claim(o.localPort, `outbound listener ${o.localPort}`, annotations.outbound);
  for (const i of inbound) {
    if (used.get(i.upstreamPort)?.startsWith('inbound') && i.upstreamPort !== i.listenPort) {
      bad(inboundText !== undefined ? annotations.inboundPorts : annotations.upstreamPort, `app port ${i.upstreamPort} is also a sidecar listener port`);
    }
    if (i.upstreamPort === i.listenPort) bad(inboundText !== undefined ? annotations.inboundPorts : annotations.upstreamPort, `the sidecar and the app cannot both use port ${i.listenPort}`);
  }

  if (problems.length > 0) return { problems };
  return { settings: { inbound, mode, defaultPolicy, outbound, policyConfigMaps, certs, capture, drainDelay } };
}

/** One line per problem, for stderr and admission responses. */
export function describeProblems(problems: readonly AnnotationProblem[]): string {
  return problems.map((p) => `annotation ${p.annotation}: ${p.message}`).join('; ');
}
