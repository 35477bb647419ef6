// Owns the converters: one per schema value kind, from a located value to a typed value or a diagnostic
// (never a throw), and resolving each key as flag, else file, else schema default (PC-29, security.md).

import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { parseCidr } from '../policy/match/cidr.js';
import { listenerFields, outboundFields, type KeySpec } from './schema.js';
import type { HostPort, InboundListenerConfig, OutboundListenerConfig } from './types.js';
import { at, defaultWhere, splitList, type Located, type LocatedEntry, type Problems, type Where } from './located.js';
import { fromFlag } from './flags.js';
import { Code } from '../codes.js';

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `10s`, `5m`, `1h`, `1h30m`; a bare number is refused (ambiguous unit). */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * (durationUnits[m[2] as string] as number);
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

const sizeUnits: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3 };

/** `512`, `512B`, `60KiB`, `1MiB`, `1MB`. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = sizeUnits[(m[2] as string).toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isFinite(n) ? Math.round(n) : undefined;
}

const hostnamePattern = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;

export function parseHostPort(text: string): HostPort | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return `expected host:port (IPv6 as [::1]:port), got '${text}'`;
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (m[1] !== undefined && isIP(host) !== 6) return `'${host}' is not an IPv6 address`;
  if (m[2] !== undefined && isIP(host) === 0 && !hostnamePattern.test(host)) return `'${host}' is not an IP address or host name`;
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  return { host, port };
}

function isCidr(text: string): boolean {
  // The parser the matchers use, so every network the config accepts compiles.
  return parseCidr(text) !== null;
}

function scalarText(l: Located, problems: Problems, what: string): string | undefined {
  if (l.type !== 'scalar' || l.value === null) return problems.error(l.where, Code.CONFIG_TYPE, `expected ${what}`);
  return l.text;
}

function nonEmptyString(l: Located, problems: Problems): string | undefined {
  const t = scalarText(l, problems, 'a string');
  if (t === undefined) return undefined;
  if (t.trim() === '') return problems.error(l.where, Code.CONFIG_TYPE, 'must not be empty');
  return t;
}

function toPath(l: Located, problems: Problems): string | undefined {
  const t = nonEmptyString(l, problems);
  if (t === undefined) return undefined;
  return isAbsolute(t) ? t : resolve(l.where.baseDir, t);
}

/** A list may be written as a YAML sequence or (for convenience) one comma-separated string. */
function toList(l: Located, problems: Problems, splitString: boolean): Located[] | undefined {
  if (l.type === 'seq') return l.items;
  if (l.type === 'scalar' && typeof l.value === 'string' && splitString) return splitList(l.value).map((s, i) => ({ ...l, value: s, text: s, where: at(l.where, `${l.where.fieldPath}[${i}]`) }));
  if (l.type === 'scalar' && l.value === null) return [];
  return problems.error(l.where, Code.CONFIG_TYPE, 'expected a list');
}

function toMapEntries(l: Located, problems: Problems): LocatedEntry[] | undefined {
  if (l.type === 'map') return l.entries;
  if (l.type === 'scalar' && l.value === null) return [];
  return problems.error(l.where, Code.CONFIG_TYPE, 'expected a map');
}

function toInteger(l: Located, problems: Problems, min: number, max: number): number | undefined {
  const t = scalarText(l, problems, 'an integer');
  if (t === undefined) return undefined;
  if (!/^-?\d+$/.test(t.trim())) return problems.error(l.where, Code.CONFIG_TYPE, `expected an integer, got '${t}'`);
  const n = Number(t);
  if (n < min || n > max) return problems.error(l.where, Code.CONFIG_OUT_OF_RANGE, `${n} is out of range (${min}-${max})`);
  return n;
}

function toPort(l: Located, problems: Problems): number | undefined {
  const t = scalarText(l, problems, 'a port');
  if (t === undefined) return undefined;
  if (!/^\d+$/.test(t.trim()) || Number(t) < 1 || Number(t) > 65535) return problems.error(l.where, Code.CONFIG_INVALID_PORT, `'${t}' is not a port (1-65535)`);
  return Number(t);
}

function toHostPort(l: Located, problems: Problems): HostPort | undefined {
  const t = scalarText(l, problems, 'host:port');
  if (t === undefined) return undefined;
  const hp = parseHostPort(t);
  return typeof hp === 'string' ? problems.error(l.where, Code.CONFIG_INVALID_ADDRESS, hp) : hp;
}

function toEnum(l: Located, problems: Problems, values: readonly string[]): string | undefined {
  const t = scalarText(l, problems, `one of ${values.join(', ')}`);
  if (t === undefined) return undefined;
  if (!values.includes(t)) return problems.error(l.where, Code.CONFIG_INVALID_ENUM, `'${t}' is not one of ${values.join(', ')}`);
  return t;
}

function toBoolean(l: Located, problems: Problems): boolean | undefined {
  if (l.type === 'scalar' && typeof l.value === 'boolean') return l.value;
  if (l.type === 'scalar' && (l.text === 'true' || l.text === 'false')) return l.text === 'true';
  return problems.error(l.where, Code.CONFIG_TYPE, 'expected true or false');
}

function toDuration(l: Located, problems: Problems, spec: KeySpec): number | undefined {
  const t = scalarText(l, problems, 'a duration');
  if (t === undefined) return undefined;
  const ms = parseDuration(t);
  if (ms === undefined) return problems.error(l.where, Code.CONFIG_INVALID_DURATION, `'${t}' is not a duration (use a unit: 500ms, 10s, 5m, 1h)`);
  if ((spec.min !== undefined && ms < spec.min) || (spec.max !== undefined && ms > spec.max)) {
    return problems.error(l.where, Code.CONFIG_OUT_OF_RANGE, `${t} is out of range (${formatMs(spec.min ?? 0)}-${formatMs(spec.max ?? Infinity)})`);
  }
  return ms;
}

function toSize(l: Located, problems: Problems, spec: KeySpec): number | undefined {
  const t = scalarText(l, problems, 'a size');
  if (t === undefined) return undefined;
  const bytes = parseSize(t);
  if (bytes === undefined) return problems.error(l.where, Code.CONFIG_INVALID_SIZE, `'${t}' is not a size (e.g. 512, 8KiB, 1MiB)`);
  if ((spec.min !== undefined && bytes < spec.min) || (spec.max !== undefined && bytes > spec.max)) {
    return problems.error(l.where, Code.CONFIG_OUT_OF_RANGE, `${t} is out of range (${spec.min ?? 0}-${spec.max ?? Infinity} bytes)`);
  }
  return bytes;
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function toUrl(l: Located, problems: Problems, schemes: readonly string[], schemeHint = ''): URL | undefined {
  const t = nonEmptyString(l, problems);
  if (t === undefined) return undefined;
  let url: URL;
  try { url = new URL(t); } catch { return problems.error(l.where, Code.CONFIG_INVALID_URL, `'${t}' is not a URL`); }
  if (!schemes.includes(url.protocol)) return problems.error(l.where, Code.CONFIG_INVALID_URL, `'${t}' must use ${schemes.map((s) => s + '//').join(' or ')}${schemeHint}`);
  if (!url.hostname) return problems.error(l.where, Code.CONFIG_INVALID_URL, `'${t}' has no host`);
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '' && url.pathname !== '/')) {
    return problems.error(l.where, Code.CONFIG_INVALID_URL, `'${t}' must be scheme://host:port only (no credentials, path, query or fragment)`);
  }
  return url;
}

const spiffeIdPattern = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

function urlPort(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Checks a map's keys against the allowed set; unknown keys are errors (PC-29). */
function fields(l: Located, problems: Problems, allowed: readonly { key: string; required: boolean }[]): Map<string, Located> | undefined {
  if (l.type !== 'map') return problems.error(l.where, Code.CONFIG_TYPE, 'expected a map');
  const out = new Map<string, Located>();
  for (const e of l.entries) {
    if (!allowed.some((a) => a.key === e.key)) { problems.error(e.keyWhere, Code.CONFIG_UNKNOWN_KEY, `unknown key '${e.key}' (allowed: ${allowed.map((a) => a.key).join(', ')})`); continue; }
    out.set(e.key, e.value);
  }
  for (const a of allowed) if (a.required && !out.has(a.key)) problems.error(l.where, Code.CONFIG_MISSING_KEY, `'${a.key}' is required`);
  return out;
}

function toListeners(l: Located, problems: Problems): InboundListenerConfig[] | undefined {
  const items = toList(l, problems, false);
  if (!items) return undefined;
  const out: InboundListenerConfig[] = [];
  let ok = true;
  for (const item of items) {
    const f = fields(item, problems, listenerFields);
    if (!f) { ok = false; continue; }
    const listen = f.has('listen') ? toHostPort(f.get('listen') as Located, problems) : undefined;
    const protocol = f.has('protocol') ? toEnum(f.get('protocol') as Located, problems, ['http', 'tcp']) : 'http';
    // The upstream scheme must agree with the protocol: a tcp:// workload behind an HTTP listener (or the
    // reverse) would be decided on the wrong facts, so it is refused rather than guessed.
    let upstream = f.has('upstream') && protocol !== undefined
      ? toUrl(f.get('upstream') as Located, problems, protocol === 'tcp' ? ['tcp:'] : ['http:', 'h2c:'], protocol === 'tcp' ? ' (protocol: tcp)' : ' (set protocol: tcp for a tcp:// upstream)')
      : undefined;
    if (upstream && protocol === 'tcp' && !upstream.port) {
      upstream = problems.error((f.get('upstream') as Located).where, Code.CONFIG_INVALID_URL, `'${upstream.href}' needs a port (tcp://host:port)`);
    }
    const mode = f.has('mode') ? toEnum(f.get('mode') as Located, problems, ['strict', 'permissive']) : 'strict';
    const workloadPort = f.has('workloadPort') ? toPort(f.get('workloadPort') as Located, problems) : upstream ? urlPort(upstream) : undefined;
    const name = f.has('name') ? nonEmptyString(f.get('name') as Located, problems) : listen ? `inbound-${listen.port}` : undefined;
    if (!listen || !upstream || !mode || !protocol || workloadPort === undefined || name === undefined) { ok = false; continue; }
    const entry: InboundListenerConfig = { name, listen, upstream: `${upstream.protocol}//${upstream.host}`, mode: mode as 'strict' | 'permissive', workloadPort };
    // Absent means http, so configs and tests written before opaque listeners keep their exact shape.
    if (protocol === 'tcp') entry.protocol = 'tcp';
    out.push(entry);
  }
  return ok ? out : undefined;
}

function toOutbound(l: Located, problems: Problems): OutboundListenerConfig[] | undefined {
  const items = toList(l, problems, false);
  if (!items) return undefined;
  const out: OutboundListenerConfig[] = [];
  let ok = true;
  for (const item of items) {
    const f = fields(item, problems, outboundFields);
    if (!f) { ok = false; continue; }
    const listen = f.has('listen') ? toHostPort(f.get('listen') as Located, problems) : undefined;
    const target = f.has('target') ? toUrl(f.get('target') as Located, problems, ['https:']) : undefined;
    let expectIdentity: string | undefined;
    if (f.has('expectIdentity')) {
      const e = f.get('expectIdentity') as Located;
      expectIdentity = nonEmptyString(e, problems);
      if (expectIdentity !== undefined && !spiffeIdPattern.test(expectIdentity)) {
        expectIdentity = problems.error(e.where, Code.CONFIG_INVALID_VALUE, `'${expectIdentity}' is not a SPIFFE ID (spiffe://trust-domain/path)`);
      }
    }
    const serverName = f.has('serverName') ? nonEmptyString(f.get('serverName') as Located, problems) : undefined;
    const name = f.has('name') ? nonEmptyString(f.get('name') as Located, problems) : listen ? `outbound-${listen.port}` : undefined;
    if (!listen || !target || !expectIdentity || name === undefined || (f.has('serverName') && serverName === undefined)) { ok = false; continue; }
    const entry: OutboundListenerConfig = { name, listen, target: `${target.protocol}//${target.host}`, expectIdentity };
    if (serverName !== undefined) entry.serverName = serverName;
    out.push(entry);
  }
  return ok ? out : undefined;
}

/** Converts one located value according to its schema key. */
export function convert(spec: KeySpec, l: Located, problems: Problems): unknown {
  switch (spec.kind) {
    case 'string': return nonEmptyString(l, problems);
    case 'path': return toPath(l, problems);
    case 'pathList': {
      const items = toList(l, problems, false);
      if (!items) return undefined;
      const paths = items.map((i) => toPath(i, problems));
      return paths.every((p) => p !== undefined) ? paths : undefined;
    }
    case 'boolean': return toBoolean(l, problems);
    case 'integer': return toInteger(l, problems, spec.min ?? Number.MIN_SAFE_INTEGER, spec.max ?? Number.MAX_SAFE_INTEGER);
    case 'duration': return toDuration(l, problems, spec);
    case 'size': return toSize(l, problems, spec);
    case 'enum': return toEnum(l, problems, spec.values ?? []);
    case 'hostPort': return toHostPort(l, problems);
    case 'stringList': {
      const items = toList(l, problems, true);
      if (!items) return undefined;
      const out = items.map((i) => nonEmptyString(i, problems));
      return out.every((s) => s !== undefined) ? out : undefined;
    }
    case 'cidrList': {
      const items = toList(l, problems, true);
      if (!items) return undefined;
      let ok = true;
      const out = items.map((i) => {
        const t = nonEmptyString(i, problems);
        if (t !== undefined && !isCidr(t.trim())) { problems.error(i.where, Code.CONFIG_INVALID_CIDR, `'${t}' is not an IP address or CIDR`); ok = false; }
        if (t === undefined) ok = false;
        return (t ?? '').trim();
      });
      return ok ? out : undefined;
    }
    case 'stringMap': {
      const entries = toMapEntries(l, problems);
      if (!entries) return undefined;
      const out: Record<string, string> = {};
      let ok = true;
      for (const e of entries) {
        const t = scalarText(e.value, problems, 'a string value');
        if (t === undefined) { ok = false; continue; }
        out[e.key] = t;
      }
      return ok ? out : undefined;
    }
    case 'portMap': {
      const entries = toMapEntries(l, problems);
      if (!entries) return undefined;
      const out: Record<string, number> = {};
      let ok = true;
      for (const e of entries) {
        const p = toPort(e.value, problems);
        if (p === undefined) { ok = false; continue; }
        out[e.key] = p;
      }
      return ok ? out : undefined;
    }
    case 'probePaths': {
      const entries = toMapEntries(l, problems);
      if (!entries) return undefined;
      const out: Record<number, string[]> = {};
      let ok = true;
      for (const e of entries) {
        const port = toPort({ type: 'scalar', value: e.key, text: e.key, where: e.keyWhere }, problems);
        const items = toList(e.value, problems, true);
        if (port === undefined || !items) { ok = false; continue; }
        for (const item of items) {
          const path = nonEmptyString(item, problems);
          if (path === undefined) { ok = false; continue; }
          if (!path.startsWith('/')) { problems.error(item.where, Code.CONFIG_INVALID_VALUE, `probe path '${path}' must start with /`); ok = false; continue; }
          (out[port] ??= []).push(path);
        }
      }
      return ok ? out : undefined;
    }
    case 'listeners': return toListeners(l, problems);
    case 'outbound': return toOutbound(l, problems);
    case 'decisionLog': {
      const t = nonEmptyString(l, problems);
      if (t === undefined) return undefined;
      if (t === 'stdout' || t === 'stderr' || t === 'off') return t;
      return isAbsolute(t) ? t : resolve(l.where.baseDir, t);
    }
  }
}

/** Resolves every key of `specs`: flag, else file, else schema default. Missing required keys are errors. */
export function resolveValues(specs: readonly KeySpec[], fileValues: Map<string, Located>, flagValues: Map<string, Located>, cwd: string, missingWhere: Where, problems: Problems, optional: ReadonlySet<string> = new Set()): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const spec of specs) {
    const located = flagValues.get(spec.key) ?? fileValues.get(spec.key);
    if (located) {
      const v = convert(spec, located, problems);
      if (v !== undefined) out.set(spec.key, v);
      continue;
    }
    if (spec.default !== undefined) {
      const v = convert(spec, fromFlag(spec, [{ text: spec.default, where: defaultWhere(spec.key, cwd) }], problems) as Located, problems);
      if (v !== undefined) out.set(spec.key, v);
      continue;
    }
    if (spec.required && !optional.has(spec.key)) problems.error(at(missingWhere, spec.key), Code.CONFIG_MISSING_KEY, `'${spec.key}' is required (file key '${spec.key}' or flag --${spec.flag})`);
  }
  return out;
}
