// Owns Linkerd identity names: the SPIFFE -> Linkerd name mapping and the parsing of identity entries
// (`*`, `*.suffix`, exact, `spiffe://...`). Spec: shared/spec/linkerd.md §3 (core/src/identity_match.rs).

import type { Matcher } from '../../ir.js';

/** `<sa>.<ns>.serviceaccount.identity.<cp-ns>.<td>`: the name Linkerd's identity controller issues. */
export function serviceAccountIdentity(serviceAccount: string, namespace: string, controlPlaneNamespace: string, trustDomain: string): string {
  return `${serviceAccount}.${namespace}.serviceaccount.identity.${controlPlaneNamespace}.${trustDomain}`;
}

/** The `peer.name` template of Linkerd identity names for a control plane (trust domain filled per peer). */
export function identityNameTemplate(controlPlaneNamespace: string): string {
  return `{sa}.{ns}.serviceaccount.identity.${controlPlaneNamespace}.{td}`;
}

/** Linkerd identity entries (exact names, `spiffe://` IDs, label suffixes) as one IR matcher. */
export function identityMatcher(exact: string[], suffixes: string[], controlPlaneNamespace: string): Matcher {
  return { type: 'peer.name', template: identityNameTemplate(controlPlaneNamespace), exact, suffixes };
}

/**
 * IR suffix (labels without the leading dot, as `peer.name` takes them) that every identity
 * of a namespace ends with: `<ns>.serviceaccount.identity.<cp-ns>.<td>`.
 */
export function namespaceIdentitySuffix(namespace: string, controlPlaneNamespace: string, trustDomain: string): string {
  return `${namespace}.serviceaccount.identity.${controlPlaneNamespace}.${trustDomain}`;
}

/**
 * One MeshTLSAuthentication/ServerAuthorization identity entry as Linkerd parses it: `*` is any identity
 * (suffix ""), `*.rest` a label-bounded suffix (IR `rest`), anything else (also `foo.*.bar`) an exact string.
 */
export function parseIdentityEntry(entry: string): { exact: string } | { suffix: string } {
  if (entry === '*') return { suffix: '' };
  if (entry.startsWith('*.')) return { suffix: entry.slice(2) };
  return { exact: entry };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i;
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/;

/** The webhook rule (runtime/src/validation.rs): a DNS-like name with `*` only as the first label, or a SPIFFE ID. */
export function isValidIdentityEntry(entry: string): boolean {
  if (entry === '*') return true;
  if (entry.startsWith('spiffe://')) return SPIFFE_ID.test(entry);
  const labels = entry.split('.');
  return labels.every((label, i) => (i === 0 && label === '*') || DNS_LABEL.test(label));
}
