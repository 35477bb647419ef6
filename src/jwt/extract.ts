// Owns token extraction exactly where RequestAuthentication says (Envoy jwt_authn extractor.cc): headers
// with a prefix searched anywhere in the value, query parameters of the raw target, and cookies.

import type { JwtProviderSpec } from '../policy/ir.js';

export type TokenLocation =
  | { kind: 'header'; name: string; prefix: string }
  | { kind: 'param'; name: string }
  | { kind: 'cookie'; name: string };

interface LocationPlan {
  location: TokenLocation;
  /** Indices of the providers that configured this location (only they may verify tokens found here). */
  providers: number[];
}

export interface ExtractedToken {
  token: string;
  /** Every configured location the same token text was found in (deduplicated by token text). */
  locations: TokenLocation[];
  providers: number[];
}

/** Istio's defaults when a jwtRule names no location (security.md §2.10, istio.md §10). */
export function effectiveLocations(provider: JwtProviderSpec): TokenLocation[] {
  const none = provider.fromHeaders.length === 0 && provider.fromParams.length === 0 && provider.fromCookies.length === 0;
  if (none) {
    return [{ kind: 'header', name: 'authorization', prefix: 'Bearer ' }, { kind: 'param', name: 'access_token' }];
  }
  return [
    ...provider.fromHeaders.map((h): TokenLocation => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix })),
    ...provider.fromParams.map((name): TokenLocation => ({ kind: 'param', name })),
    ...provider.fromCookies.map((name): TokenLocation => ({ kind: 'cookie', name })),
  ];
}

function locationKey(location: TokenLocation): string {
  return location.kind === 'header' ? `header\0${location.name}\0${location.prefix}` : `${location.kind}\0${location.name}`;
}

export function planLocations(providers: JwtProviderSpec[]): LocationPlan[] {
  const byKey = new Map<string, LocationPlan>();
  providers.forEach((provider, index) => {
    for (const location of effectiveLocations(provider)) {
      const key = locationKey(location);
      const plan = byKey.get(key) ?? { location, providers: [] };
      if (!plan.providers.includes(index)) plan.providers.push(index);
      byKey.set(key, plan);
    }
  });
  return [...byKey.values()];
}

/** RFC 4648 §5 base64url alphabet plus the dot (Envoy ConstantBase64UrlEncodingCharsPlusDot). */
const TOKEN_CHAR = /[A-Za-z0-9_.-]/;

/**
 * Envoy extractJWT: skip to the first base64url-or-dot character after the prefix and take the rest of the
 * value (trailing junk then fails verification); with no such character the whole value is the token.
 */
function tokenAfter(value: string, start: number): string {
  for (let i = start; i < value.length; i++) {
    if (TOKEN_CHAR.test(value[i]!)) return value.slice(i);
  }
  return value;
}

function headerValues(headers: Record<string, string | string[] | undefined>, name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function decodeQueryComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** All values per name of the raw target's query (fragment excluded). Repeated names keep every value. */
export function parseQuery(target: string): Map<string, string[]> {
  const params = new Map<string, string[]>();
  const q = target.indexOf('?');
  if (q < 0) return params;
  let query = target.slice(q + 1);
  const hash = query.indexOf('#');
  if (hash >= 0) query = query.slice(0, hash);
  for (const pair of query.split('&')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    const name = decodeQueryComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decodeQueryComponent(pair.slice(eq + 1));
    const list = params.get(name) ?? [];
    list.push(value);
    params.set(name, list);
  }
  return params;
}

/** All cookie values per name over every Cookie header (HTTP/2 may split cookies into several). */
export function parseCookies(headers: Record<string, string | string[] | undefined>): Map<string, string[]> {
  const cookies = new Map<string, string[]>();
  for (const header of headerValues(headers, 'cookie')) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      const list = cookies.get(name) ?? [];
      list.push(value);
      cookies.set(name, list);
    }
  }
  return cookies;
}

export interface ExtractInput {
  target: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Finds every token in the configured locations. A header without the configured prefix is ignored (Envoy
 * `continue`); a repeated header or parameter contributes each value, so two tokens are never merged into one.
 */
export function extractTokens(plans: LocationPlan[], request: ExtractInput): ExtractedToken[] {
  const found = new Map<string, ExtractedToken>();
  let query: Map<string, string[]> | undefined;
  let cookies: Map<string, string[]> | undefined;
  const add = (token: string, plan: LocationPlan): void => {
    const entry = found.get(token) ?? { token, locations: [], providers: [] };
    if (!entry.locations.some((l) => locationKey(l) === locationKey(plan.location))) entry.locations.push(plan.location);
    for (const p of plan.providers) if (!entry.providers.includes(p)) entry.providers.push(p);
    found.set(token, entry);
  };
  for (const plan of plans) {
    const location = plan.location;
    if (location.kind === 'header') {
      for (const value of headerValues(request.headers, location.name)) {
        if (location.prefix === '') {
          add(value, plan);
          continue;
        }
        const at = value.indexOf(location.prefix);
        if (at < 0) continue;
        add(tokenAfter(value, at + location.prefix.length), plan);
      }
    } else if (location.kind === 'param') {
      query ??= parseQuery(request.target);
      for (const value of query.get(location.name) ?? []) add(value, plan);
    } else {
      cookies ??= parseCookies(request.headers);
      for (const value of cookies.get(location.name) ?? []) add(value, plan);
    }
  }
  return [...found.values()];
}

/**
 * Drops every occurrence of the named query parameters from a raw target (JwtHeaderEdits.removeQueryParams),
 * leaving the path and every other parameter byte for byte as sent.
 */
export function removeQueryParams(target: string, names: readonly string[]): string {
  const q = target.indexOf('?');
  if (q < 0 || names.length === 0) return target;
  const hash = target.indexOf('#', q);
  const query = hash < 0 ? target.slice(q + 1) : target.slice(q + 1, hash);
  const fragment = hash < 0 ? '' : target.slice(hash);
  const kept = query.split('&').filter((pair) => {
    const eq = pair.indexOf('=');
    return !names.includes(decodeQueryComponent(eq < 0 ? pair : pair.slice(0, eq)));
  });
  const rest = kept.join('&');
  return `${target.slice(0, q)}${rest.length > 0 ? `?${rest}` : ''}${fragment}`;
}
