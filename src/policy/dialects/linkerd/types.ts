// Owns the Linkerd dialect's own lowering types: Servers per port with their routes, authorizations and
// rate limit, as linkerd2-proxy's ServerPolicy holds them, before tiers.ts writes them as one tier (linkerd.md §1).
import type { Matcher, PolicyRef, RouteRule } from '../../ir.js';

export interface LinkerdAuthorization {
  /** e.g. {kind:'authorizationpolicy', name} or {kind:'default', name:'all-unauthenticated'|'probe'|'localhost'|'audit'} */
  ref: PolicyRef;
  /** Network AND authentication, as one Matcher. */
  match: Matcher;
  /** The `audit` default: admits, but the decision is a would-deny for the logs. */
  audit: boolean;
}

export interface LinkerdRoute {
  ref: PolicyRef;
  hostnames: string[];
  rules: RouteRule[];
  /** Authorizations targeting this route. */
  authorizations: LinkerdAuthorization[];
  /** Ordering key: creationTimestamp then name; built-in routes sort last. */
  order: number;
}

export interface LinkerdRateLimit {
  ref: PolicyRef;
  totalRps?: number;
  identityRps?: number;
  /** Identities are Linkerd names (`<sa>.<ns>.serviceaccount.identity.<cp-ns>.<td>`). */
  overrides: { rps: number; identities: string[] }[];
}

export interface LinkerdServer {
  /** {kind:'Server', name} or {kind:'default', name:<default policy name>}. */
  ref: PolicyRef;
  protocol: 'unknown' | 'HTTP/1' | 'HTTP/2' | 'gRPC' | 'opaque' | 'TLS';
  routes: LinkerdRoute[];
  /** Server-level, Namespace-level and accessPolicy authorizations (tiers.ts appends localhost). */
  authorizations: LinkerdAuthorization[];
  rateLimit?: LinkerdRateLimit;
}

export interface LinkerdProgram {
  /** Port number -> the Server (or default server) that owns it. */
  servers: Record<number, LinkerdServer>;
  /** Used for ports with no entry in `servers`. */
  defaultServer: LinkerdServer;
}
