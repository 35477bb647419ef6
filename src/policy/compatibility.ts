// Owns the `compatibility` switch: `secure` (default) closes the bypasses Istio documents as its own
// behaviour; `istio-exact` restores that behaviour. One table of differences, read by config, docs and explain.
import type { CompileOptions, PathNormalization } from './ir.js';

export const compatibilities = ['secure', 'istio-exact'] as const;
export type Compatibility = (typeof compatibilities)[number];
export const DEFAULT_COMPATIBILITY: Compatibility = 'secure';

/** The settings the switch chooses defaults for. An explicit config key or flag always wins. */
export interface CompatibilitySettings {
  pathNormalization: PathNormalization;
  rejectEncodedSlashes: boolean;
  denyPathsIgnoreCase: boolean;
  denyHostsAnyPort: boolean;
  jwtDefaultQueryParam: boolean;
  jwtRequireExpiration: boolean;
}

export interface CompatibilityDifference {
  /** The setting (config key) that carries the difference. */
  setting: keyof CompatibilitySettings;
  secure: string;
  istioExact: string;
  /** Why the secure reading differs: the bypass it closes. */
  why: string;
}

const SETTINGS: Record<Compatibility, CompatibilitySettings> = {
  'secure': {
    pathNormalization: 'MERGE_SLASHES',
    rejectEncodedSlashes: true,
    denyPathsIgnoreCase: true,
    denyHostsAnyPort: true,
    jwtDefaultQueryParam: false,
    jwtRequireExpiration: true,
  },
  'istio-exact': {
    pathNormalization: 'BASE',
    rejectEncodedSlashes: false,
    denyPathsIgnoreCase: false,
    denyHostsAnyPort: false,
    jwtDefaultQueryParam: true,
    jwtRequireExpiration: false,
  },
};

/** Every difference between the two settings, in the order docs/istio.md lists them. */
export const compatibilityDifferences: readonly CompatibilityDifference[] = [
  {
    setting: 'pathNormalization', secure: 'MERGE_SLASHES', istioExact: 'BASE',
    why: '`//admin` stays `//admin` under BASE and misses `DENY paths: ["/admin"]` (CVE-2021-31920)',
  },
  {
    setting: 'rejectEncodedSlashes', secure: '400 for %2F / %5C in the path', istioExact: 'forwarded still encoded',
    why: 'an upstream that decodes `/public/..%2fadmin` serves /admin (Envoy REJECT_REQUEST posture)',
  },
  {
    setting: 'denyPathsIgnoreCase', secure: 'DENY paths match any case', istioExact: 'case-sensitive',
    why: '`/ADMIN` passes `DENY paths: ["/admin*"]` and case-insensitive routers (Express) serve it',
  },
  {
    setting: 'denyHostsAnyPort', secure: 'a DENY host without a port matches it on any port', istioExact: 'the whole authority, port included',
    why: '`DENY hosts: ["admin.api"]` misses `Host: admin.api:443`',
  },
  {
    setting: 'jwtDefaultQueryParam', secure: 'default token location: Authorization: Bearer only', istioExact: 'also `?access_token=`',
    why: 'tokens in URLs leak into access logs; `fromParams` still enables a parameter explicitly',
  },
  {
    setting: 'jwtRequireExpiration', secure: 'tokens without `exp` are refused (401)', istioExact: 'accepted',
    why: 'a token without `exp` is valid forever (RFC 8725 practice); exempt an issuer with jwks.expirationOptionalIssuers',
  },
];

export function compatibilitySettings(compatibility: Compatibility): CompatibilitySettings {
  return { ...SETTINGS[compatibility] };
}

/**
 * The switch's defaults with the explicitly configured settings laid over them. One dependency: an
 * explicit `DECODE_AND_MERGE_SLASHES` decodes `%2F`/`%5C` itself (policy and upstream see the same decoded
 * path), so secure's 400 for encoded slashes defaults off under it.
 */
export function resolveCompatibility(compatibility: Compatibility, explicit: Partial<CompatibilitySettings> = {}): CompatibilitySettings {
  const settings = { ...SETTINGS[compatibility] };
  for (const [key, value] of Object.entries(explicit) as [keyof CompatibilitySettings, never][]) {
    if (value !== undefined) settings[key] = value;
  }
  if (explicit.rejectEncodedSlashes === undefined && settings.pathNormalization === 'DECODE_AND_MERGE_SLASHES') settings.rejectEncodedSlashes = false;
  return settings;
}

export function isCompatibility(value: unknown): value is Compatibility {
  return typeof value === 'string' && (compatibilities as readonly string[]).includes(value);
}

/** The compile options' share of the settings (the rest is request parsing or JWT verification). */
export function withCompatibility(options: CompileOptions, compatibility: Compatibility, settings = compatibilitySettings(compatibility)): CompileOptions {
  return {
    ...options,
    compatibility,
    pathNormalization: settings.pathNormalization,
    rejectEncodedSlashes: settings.rejectEncodedSlashes,
    denyPathsIgnoreCase: settings.denyPathsIgnoreCase,
    denyHostsAnyPort: settings.denyHostsAnyPort,
    jwtDefaultQueryParam: settings.jwtDefaultQueryParam,
    jwtRequireExpiration: settings.jwtRequireExpiration,
  };
}
