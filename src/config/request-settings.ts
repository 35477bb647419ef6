// Owns the request-handling settings (limits.*, jwks.*) assembled from resolved config values: `run` and
// `check`/`explain` build them with the same functions, so a flag means the same in all three.

import { configSchema, type KeySpec } from './schema.js';
import type { JwksConfig, LimitsConfig } from './types.js';
import { Problems } from './located.js';
import { resolveValues } from './converters.js';

export interface RequestSettings {
  limits: LimitsConfig;
  jwks: JwksConfig;
}

/** Every limits.* and jwks.* key: resolved together so the keys no flag set keep their schema defaults. */
export const requestSettingKeys: readonly KeySpec[] = configSchema.filter((k) => k.key.startsWith('limits.') || k.key.startsWith('jwks.'));

export function requestSettingsOf(v: ReadonlyMap<string, unknown>): RequestSettings {
  const get = <T>(key: string): T => v.get(key) as T;
  return { limits: assembleLimits(get), jwks: assembleJwks(get) };
}

export function assembleLimits(get: <T>(key: string) => T): LimitsConfig {
  return {
    maxHeaderBytes: get('limits.maxHeaderBytes'),
    maxHeaderCount: get('limits.maxHeaderCount'),
    headersTimeoutMs: get('limits.headersTimeout'),
    requestTimeoutMs: get('limits.requestTimeout'),
    bodyTimeoutMs: get('limits.bodyTimeout'),
    idleTimeoutMs: get('limits.idleTimeout'),
    tlsHandshakeTimeoutMs: get('limits.tlsHandshakeTimeout'),
    h2MaxConcurrentStreams: get('limits.h2MaxConcurrentStreams'),
    h2MaxResetsPerSecond: get('limits.h2MaxResetsPerSecond'),
    maxConnections: get('limits.maxConnections'),
    upstreamConnectTimeoutMs: get('limits.upstreamConnectTimeout'),
    upstreamTimeoutMs: get('limits.upstreamTimeout'),
    drainTimeoutMs: get('limits.drainTimeout'),
    drainDelayMs: get('limits.drainDelay'),
    maxJwtBytes: get('limits.maxJwtBytes'),
  };
}

export function assembleJwks(get: <T>(key: string) => T): JwksConfig {
  return {
    cacheTtlMs: get('jwks.cacheTtl'),
    refreshIntervalMs: get('jwks.refreshInterval'),
    staleGraceMs: get('jwks.staleGrace'),
    unknownKidMinIntervalMs: get('jwks.unknownKidMinInterval'),
    clockSkewSeconds: Math.round(get<number>('jwks.clockSkew') / 1000),
  };
}

/** Limits and JWT settings with every key at its schema default: what `run` applies unless told otherwise. */
export function defaultRequestSettings(): RequestSettings {
  const problems = new Problems();
  const v = resolveValues(requestSettingKeys, new Map(), new Map(), '/', { origin: { file: '<default>', line: 1, column: 1 }, fieldPath: '', baseDir: '/' }, problems);
  return requestSettingsOf(v);
}
