// Owns turning argv + an optional YAML file into a validated Config, or Diagnostic[] (never a throw).
// Strict like PC-29 (security.md): unknown keys are errors, flags win over the file, defaults from schema.ts.

import { isIP } from 'node:net';
import { parseCidr } from '../policy/match/cidr.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { Diagnostic, SourceOrigin } from '../policy/diagnostics.js';
import type { CompileOptions, PathNormalization } from '../policy/ir.js';
import { configSchema, keyGroups, listenerFields, outboundFields, type KeySpec } from './schema.js';
import type { Config, HostPort, InboundListenerConfig, JwksConfig, LimitsConfig, OutboundListenerConfig } from './types.js';

export interface LoadConfigDeps {
  readFile: (path: string) => Promise<string>;
  cwd: string;
}

export type LoadConfigResult = { config: Config } | { diagnostics: Diagnostic[] };

/** Pseudo-file name used in diagnostics about flags; the column is the 1-based argv position. */
export const argvOrigin = '<argv>';

// ---------------------------------------------------------------------------------------------------
// Located values: YAML nodes and flag strings normalized into one shape, so one converter per kind.

interface Where {
  origin: SourceOrigin;
  fieldPath: string;
  /** Relative paths resolve here: the config file's directory, or cwd for flags. */
  baseDir: string;
}

type Located =
  | { type: 'scalar'; value: string | number | boolean | null; text: string; where: Where }
  | { type: 'seq'; items: Located[]; where: Where }
  | { type: 'map'; entries: { key: string; keyWhere: Where; value: Located }[]; where: Where };

class Problems {
  readonly list: Diagnostic[] = [];
  error(where: Where, code: string, message: string): undefined {
    this.list.push({ code, severity: 'error', message, origin: where.origin, fieldPath: where.fieldPath });
    return undefined;
  }
}

const at = (where: Where, fieldPath: string): Where => ({ ...where, fieldPath });

// ---------------------------------------------------------------------------------------------------
// YAML -> Located

function fromYamlNode(node: YamlNode | null | undefined, doc: Document, lines: LineCounter, file: string, fieldPath: string, baseDir: string, problems: Problems, depth = 0): Located | undefined {
  const where = (n: YamlNode | null | undefined): Where => {
    const offset = n?.range?.[0] ?? 0;
    const pos = lines.linePos(offset);
    return { origin: { file, line: pos.line, column: pos.col }, fieldPath, baseDir };
  };
  if (depth > 16) return problems.error(where(node), 'PRT_CONFIG_TYPE', 'nesting is too deep');
  if (node && isAlias(node)) node = node.resolve(doc) as YamlNode | undefined;
  if (!node) return { type: 'scalar', value: null, text: '', where: where(node) };
  if (isScalar(node)) {
    const v = node.value;
    const value = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null ? v : String(v);
    const text = typeof node.source === 'string' ? node.source : value === null ? '' : String(value);
    return { type: 'scalar', value, text, where: where(node) };
  }
  if (isSeq(node)) {
    const items: Located[] = [];
    node.items.forEach((item, i) => {
      const l = fromYamlNode(item as YamlNode, doc, lines, file, `${fieldPath}[${i}]`, baseDir, problems, depth + 1);
      if (l) items.push(l);
    });
    return { type: 'seq', items, where: where(node) };
  }
  if (isMap(node)) {
    const entries: { key: string; keyWhere: Where; value: Located }[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      const key = keyNode && isScalar(keyNode) ? String(keyNode.value) : undefined;
      const keyWhere = where(keyNode);
      if (key === undefined) { problems.error(keyWhere, 'PRT_CONFIG_TYPE', 'keys must be plain strings'); continue; }
      const childPath = fieldPath ? `${fieldPath}.${key}` : key;
      keyWhere.fieldPath = childPath;
      const value = fromYamlNode(pair.value as YamlNode | null, doc, lines, file, childPath, baseDir, problems, depth + 1);
      if (value) {
        if (value.type === 'scalar' && value.value === null && !pair.value) value.where = { ...keyWhere };
        entries.push({ key, keyWhere, value });
      }
    }
    return { type: 'map', entries, where: where(node) };
  }
  return problems.error(where(node), 'PRT_CONFIG_TYPE', 'unsupported YAML node');
}

// ---------------------------------------------------------------------------------------------------
// Flags -> Located

function flagScalar(text: string, where: Where): Located {
  return { type: 'scalar', value: text, text, where };
}

function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** `k=v,k2=v2` -> map entries (split at the first `=`); reports entries without `=`. */
function flagPairs(text: string, where: Where, problems: Problems): { key: string; keyWhere: Where; value: Located }[] {
  const entries: { key: string; keyWhere: Where; value: Located }[] = [];
  for (const part of splitList(text)) {
    const eq = part.indexOf('=');
    if (eq <= 0) { problems.error(where, 'PRT_CONFIG_TYPE', `expected key=value, got '${part}'`); continue; }
    const key = part.slice(0, eq).trim();
    const w = at(where, where.fieldPath ? `${where.fieldPath}.${key}` : key);
    entries.push({ key, keyWhere: w, value: flagScalar(part.slice(eq + 1).trim(), w) });
  }
  return entries;
}

/** All occurrences of one flag -> one Located value in the shape its kind expects. */
function fromFlag(spec: KeySpec, occurrences: { text: string; where: Where }[], problems: Problems): Located | undefined {
  const last = occurrences[occurrences.length - 1];
  if (!last) return undefined;
  const where = at(last.where, spec.key);
  switch (spec.kind) {
    case 'pathList':
      return { type: 'seq', items: occurrences.map((o, i) => flagScalar(o.text, at(o.where, `${spec.key}[${i}]`))), where };
    case 'stringList':
    case 'cidrList': {
      const items: Located[] = [];
      for (const o of occurrences) for (const s of splitList(o.text)) items.push(flagScalar(s, at(o.where, `${spec.key}[${items.length}]`)));
      return { type: 'seq', items, where };
    }
    case 'stringMap':
    case 'portMap':
    case 'probePaths': {
      const entries = occurrences.flatMap((o) => flagPairs(o.text, at(o.where, spec.key), problems));
      return { type: 'map', entries, where };
    }
    case 'listeners':
    case 'outbound':
      return {
        type: 'seq', where,
        items: occurrences.map((o, i) => ({ type: 'map' as const, entries: flagPairs(o.text, at(o.where, `${spec.key}[${i}]`), problems), where: at(o.where, `${spec.key}[${i}]`) })),
      };
    default:
      return flagScalar(last.text, where);
  }
}

// ---------------------------------------------------------------------------------------------------
// Converters: Located -> typed value (or a diagnostic and undefined)

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
  if (l.type !== 'scalar' || l.value === null) return problems.error(l.where, 'PRT_CONFIG_TYPE', `expected ${what}`);
  return l.text;
}

function nonEmptyString(l: Located, problems: Problems): string | undefined {
  const t = scalarText(l, problems, 'a string');
  if (t === undefined) return undefined;
  if (t.trim() === '') return problems.error(l.where, 'PRT_CONFIG_TYPE', 'must not be empty');
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
  return problems.error(l.where, 'PRT_CONFIG_TYPE', 'expected a list');
}

function toMapEntries(l: Located, problems: Problems): { key: string; keyWhere: Where; value: Located }[] | undefined {
  if (l.type === 'map') return l.entries;
  if (l.type === 'scalar' && l.value === null) return [];
  return problems.error(l.where, 'PRT_CONFIG_TYPE', 'expected a map');
}

function toInteger(l: Located, problems: Problems, min: number, max: number): number | undefined {
  const t = scalarText(l, problems, 'an integer');
  if (t === undefined) return undefined;
  if (!/^-?\d+$/.test(t.trim())) return problems.error(l.where, 'PRT_CONFIG_TYPE', `expected an integer, got '${t}'`);
  const n = Number(t);
  if (n < min || n > max) return problems.error(l.where, 'PRT_CONFIG_OUT_OF_RANGE', `${n} is out of range (${min}-${max})`);
  return n;
}

function toPort(l: Located, problems: Problems): number | undefined {
  const t = scalarText(l, problems, 'a port');
  if (t === undefined) return undefined;
  if (!/^\d+$/.test(t.trim()) || Number(t) < 1 || Number(t) > 65535) return problems.error(l.where, 'PRT_CONFIG_INVALID_PORT', `'${t}' is not a port (1-65535)`);
  return Number(t);
}

function toHostPort(l: Located, problems: Problems): HostPort | undefined {
  const t = scalarText(l, problems, 'host:port');
  if (t === undefined) return undefined;
  const hp = parseHostPort(t);
  return typeof hp === 'string' ? problems.error(l.where, 'PRT_CONFIG_INVALID_ADDRESS', hp) : hp;
}

function toEnum(l: Located, problems: Problems, values: readonly string[]): string | undefined {
  const t = scalarText(l, problems, `one of ${values.join(', ')}`);
  if (t === undefined) return undefined;
  if (!values.includes(t)) return problems.error(l.where, 'PRT_CONFIG_INVALID_ENUM', `'${t}' is not one of ${values.join(', ')}`);
  return t;
}

function toBoolean(l: Located, problems: Problems): boolean | undefined {
  if (l.type === 'scalar' && typeof l.value === 'boolean') return l.value;
  if (l.type === 'scalar' && (l.text === 'true' || l.text === 'false')) return l.text === 'true';
  return problems.error(l.where, 'PRT_CONFIG_TYPE', 'expected true or false');
}

function toDuration(l: Located, problems: Problems, spec: KeySpec): number | undefined {
  const t = scalarText(l, problems, 'a duration');
  if (t === undefined) return undefined;
  const ms = parseDuration(t);
  if (ms === undefined) return problems.error(l.where, 'PRT_CONFIG_INVALID_DURATION', `'${t}' is not a duration (use a unit: 500ms, 10s, 5m, 1h)`);
  if ((spec.min !== undefined && ms < spec.min) || (spec.max !== undefined && ms > spec.max)) {
    return problems.error(l.where, 'PRT_CONFIG_OUT_OF_RANGE', `${t} is out of range (${formatMs(spec.min ?? 0)}-${formatMs(spec.max ?? Infinity)})`);
  }
  return ms;
}

function toSize(l: Located, problems: Problems, spec: KeySpec): number | undefined {
  const t = scalarText(l, problems, 'a size');
  if (t === undefined) return undefined;
  const bytes = parseSize(t);
  if (bytes === undefined) return problems.error(l.where, 'PRT_CONFIG_INVALID_SIZE', `'${t}' is not a size (e.g. 512, 8KiB, 1MiB)`);
  if ((spec.min !== undefined && bytes < spec.min) || (spec.max !== undefined && bytes > spec.max)) {
    return problems.error(l.where, 'PRT_CONFIG_OUT_OF_RANGE', `${t} is out of range (${spec.min ?? 0}-${spec.max ?? Infinity} bytes)`);
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
  try { url = new URL(t); } catch { return problems.error(l.where, 'PRT_CONFIG_INVALID_URL', `'${t}' is not a URL`); }
  if (!schemes.includes(url.protocol)) return problems.error(l.where, 'PRT_CONFIG_INVALID_URL', `'${t}' must use ${schemes.map((s) => s + '//').join(' or ')}${schemeHint}`);
  if (!url.hostname) return problems.error(l.where, 'PRT_CONFIG_INVALID_URL', `'${t}' has no host`);
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '' && url.pathname !== '/')) {
    return problems.error(l.where, 'PRT_CONFIG_INVALID_URL', `'${t}' must be scheme://host:port only (no credentials, path, query or fragment)`);
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
  if (l.type !== 'map') return problems.error(l.where, 'PRT_CONFIG_TYPE', 'expected a map');
  const out = new Map<string, Located>();
  for (const e of l.entries) {
    if (!allowed.some((a) => a.key === e.key)) { problems.error(e.keyWhere, 'PRT_CONFIG_UNKNOWN_KEY', `unknown key '${e.key}' (allowed: ${allowed.map((a) => a.key).join(', ')})`); continue; }
    out.set(e.key, e.value);
  }
  for (const a of allowed) if (a.required && !out.has(a.key)) problems.error(l.where, 'PRT_CONFIG_MISSING_KEY', `'${a.key}' is required`);
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
      upstream = problems.error((f.get('upstream') as Located).where, 'PRT_CONFIG_INVALID_URL', `'${upstream.href}' needs a port (tcp://host:port)`);
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
        expectIdentity = problems.error(e.where, 'PRT_CONFIG_INVALID_VALUE', `'${expectIdentity}' is not a SPIFFE ID (spiffe://trust-domain/path)`);
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
function convert(spec: KeySpec, l: Located, problems: Problems): unknown {
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
        if (t !== undefined && !isCidr(t.trim())) { problems.error(i.where, 'PRT_CONFIG_INVALID_CIDR', `'${t}' is not an IP address or CIDR`); ok = false; }
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
          if (!path.startsWith('/')) { problems.error(item.where, 'PRT_CONFIG_INVALID_VALUE', `probe path '${path}' must start with /`); ok = false; continue; }
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

// ---------------------------------------------------------------------------------------------------
// Flags

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

function flagOptions(specs: readonly KeySpec[]): ParseArgsOptions {
  const options: ParseArgsOptions = {};
  for (const k of specs) options[k.flag] = { type: k.kind === 'boolean' ? 'boolean' : 'string', multiple: true };
  return options;
}

/** parseArgs option descriptors of the workload flags, for commands that parse their own flags too. */
export const workloadFlagOptions: ParseArgsOptions = flagOptions(configSchema.filter((k) => k.workload));

interface FlagValues {
  /** Schema key -> located value. */
  values: Map<string, Located>;
  /** argv not consumed by the recognized flags (only when unknown flags are tolerated). */
  rest: string[];
  configFile: { path: string; where: Where } | undefined;
  help: boolean;
}

function readFlags(argv: readonly string[], specs: readonly KeySpec[], cwd: string, strictUnknown: boolean, problems: Problems): FlagValues {
  const options: ParseArgsOptions = { ...flagOptions(specs) };
  if (strictUnknown) { options['config'] = { type: 'string', multiple: true }; options['help'] = { type: 'boolean', multiple: true }; }
  const result: FlagValues = { values: new Map(), rest: [], configFile: undefined, help: false };
  let tokens;
  try {
    ({ tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, allowNegative: true, tokens: true }));
  } catch (err) {
    problems.error({ origin: { file: argvOrigin, line: 1, column: 1 }, fieldPath: '', baseDir: cwd }, 'PRT_CONFIG_FLAG', err instanceof Error ? err.message : String(err));
    return result;
  }
  const consumed = new Set<number>();
  const occurrences = new Map<string, { text: string; where: Where }[]>();
  for (const token of tokens) {
    if (token.kind === 'option-terminator') { consumed.add(token.index); continue; }
    if (token.kind === 'positional') {
      if (strictUnknown) problems.error({ origin: { file: argvOrigin, line: 1, column: token.index + 1 }, fieldPath: '', baseDir: cwd }, 'PRT_CONFIG_FLAG', `unexpected argument '${token.value}'`);
      continue;
    }
    const where: Where = { origin: { file: argvOrigin, line: 1, column: token.index + 1 }, fieldPath: '', baseDir: cwd };
    const declared = options[token.name];
    if (!declared) {
      if (strictUnknown) problems.error(where, 'PRT_CONFIG_UNKNOWN_FLAG', `unknown flag '${token.rawName}' (see portcullis run --help)`);
      continue;
    }
    consumed.add(token.index);
    if (token.value !== undefined && token.inlineValue === false) consumed.add(token.index + 1);
    if (token.name === 'help') { result.help = true; continue; }
    if (declared.type === 'string' && token.value === undefined) {
      problems.error(where, 'PRT_CONFIG_FLAG', `flag '${token.rawName}' needs a value`);
      continue;
    }
    if (token.name === 'config') { result.configFile = { path: token.value as string, where }; continue; }
    const text = declared.type === 'boolean' ? String(!token.rawName.startsWith('--no-')) : (token.value as string);
    const list = occurrences.get(token.name) ?? [];
    list.push({ text, where });
    occurrences.set(token.name, list);
  }
  for (const spec of specs) {
    const occ = occurrences.get(spec.flag);
    if (!occ) continue;
    if (!spec.repeatable && !['boolean', 'stringList', 'cidrList', 'stringMap', 'portMap', 'probePaths'].includes(spec.kind) && occ.length > 1) {
      problems.error(at(occ[1]!.where, spec.key), 'PRT_CONFIG_FLAG', `flag '--${spec.flag}' given more than once`);
      continue;
    }
    const located = fromFlag(spec, occ, problems);
    if (located) result.values.set(spec.key, located);
  }
  result.rest = argv.filter((_, i) => !consumed.has(i));
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Config file

function readConfigDocument(text: string, file: string, problems: Problems): Map<string, Located> {
  const values = new Map<string, Located>();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const baseDir = dirname(file);
  for (const e of [...doc.errors, ...doc.warnings]) {
    const pos = lines.linePos(e.pos[0]);
    problems.list.push({
      code: 'PRT_CONFIG_YAML', severity: doc.errors.includes(e as never) ? 'error' : 'warning',
      message: e.message.split('\n')[0] ?? e.message, origin: { file, line: pos.line, column: pos.col }, fieldPath: '',
    });
  }
  if (doc.errors.length > 0) return values;
  const root = fromYamlNode(doc.contents as YamlNode | null, doc, lines, file, '', baseDir, problems);
  if (!root || (root.type === 'scalar' && root.value === null)) return values;
  if (root.type !== 'map') { problems.error(root.where, 'PRT_CONFIG_TYPE', 'the config file must be a YAML map of keys'); return values; }
  for (const entry of root.entries) {
    if (keyGroups.includes(entry.key)) {
      if (entry.value.type !== 'map') { problems.error(entry.value.where, 'PRT_CONFIG_TYPE', `'${entry.key}' must be a map`); continue; }
      for (const sub of entry.value.entries) {
        const full = `${entry.key}.${sub.key}`;
        if (!configSchema.some((k) => k.key === full)) {
          const allowed = configSchema.filter((k) => k.key.startsWith(entry.key + '.')).map((k) => k.key.slice(entry.key.length + 1));
          problems.error(sub.keyWhere, 'PRT_CONFIG_UNKNOWN_KEY', `unknown key '${sub.key}' in ${entry.key} (allowed: ${allowed.join(', ')})`);
          continue;
        }
        values.set(full, sub.value);
      }
      continue;
    }
    if (!configSchema.some((k) => k.key === entry.key)) {
      problems.error(entry.keyWhere, 'PRT_CONFIG_UNKNOWN_KEY', `unknown key '${entry.key}'${suggest(entry.key)}`);
      continue;
    }
    values.set(entry.key, entry.value);
  }
  return values;
}

function suggest(key: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_.]/g, '');
  const wanted = norm(key);
  let best: { key: string; distance: number } | undefined;
  for (const k of configSchema) {
    for (const candidate of [k.key, k.flag, k.key.split('.').pop() as string]) {
      const distance = editDistance(wanted, norm(candidate));
      if (distance <= 2 && (!best || distance < best.distance)) best = { key: k.key, distance };
    }
  }
  return best ? ` (did you mean '${best.key}'?)` : '';
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length] as number;
}

// ---------------------------------------------------------------------------------------------------
// Defaults and assembly

const defaultWhere = (key: string, cwd: string): Where => ({ origin: { file: '<default>', line: 1, column: 1 }, fieldPath: key, baseDir: cwd });

/** Resolves every key of `specs`: flag, else file, else schema default. Missing required keys are errors. */
function resolveValues(specs: readonly KeySpec[], fileValues: Map<string, Located>, flagValues: Map<string, Located>, cwd: string, missingWhere: Where, problems: Problems, optional: ReadonlySet<string> = new Set()): Map<string, unknown> {
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
    if (spec.required && !optional.has(spec.key)) problems.error(at(missingWhere, spec.key), 'PRT_CONFIG_MISSING_KEY', `'${spec.key}' is required (file key '${spec.key}' or flag --${spec.flag})`);
  }
  return out;
}

function buildCompileOptions(v: Map<string, unknown>): CompileOptions {
  const get = <T>(key: string): T => v.get(key) as T;
  return {
    workload: {
      namespace: get<string>('namespace'),
      labels: get<Record<string, string>>('labels'),
      annotations: get<Record<string, string>>('annotations'),
      serviceAccount: get<string>('serviceAccount'),
      trustDomain: get<string>('trustDomain'),
      trustDomainAliases: get<string[]>('trustDomainAliases'),
    },
    rootNamespace: get<string>('rootNamespace'),
    pathNormalization: get<PathNormalization>('pathNormalization'),
    denyPathsIgnoreCase: get<boolean>('denyPathsIgnoreCase'),
    customProviders: [],
    linkerd: {
      defaultPolicy: get<string>('defaultPolicy'),
      clusterNetworks: get<string[]>('clusterNetworks'),
      probeNetworks: get<string[]>('probeNetworks'),
      probePaths: get<Record<number, string[]>>('probePaths'),
      portNames: get<Record<string, number>>('portNames'),
      controlPlaneNamespace: get<string>('controlPlaneNamespace'),
    },
  };
}

function crossChecks(config: Config, problems: Problems, where: Where): void {
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  const claim = (name: string, hp: HostPort, path: string) => {
    if (hp.port === 0) return;
    const key = `${hp.host}:${hp.port}`;
    const owner = addresses.get(key);
    if (owner) problems.error(at(where, path), 'PRT_CONFIG_CONFLICT', `${key} is already used by ${owner}`);
    else addresses.set(key, name);
  };
  config.listeners.forEach((l, i) => {
    if (names.has(l.name)) problems.error(at(where, `listeners[${i}].name`), 'PRT_CONFIG_CONFLICT', `listener name '${l.name}' is used twice`);
    names.add(l.name);
    claim(`listener '${l.name}'`, l.listen, `listeners[${i}].listen`);
  });
  config.outbound.forEach((o, i) => {
    if (names.has(o.name)) problems.error(at(where, `outbound[${i}].name`), 'PRT_CONFIG_CONFLICT', `listener name '${o.name}' is used twice`);
    names.add(o.name);
    claim(`outbound '${o.name}'`, o.listen, `outbound[${i}].listen`);
  });
  claim('the admin listener', config.admin, 'admin');
  if (config.listeners.length === 0) problems.error(at(where, 'listeners'), 'PRT_CONFIG_MISSING_KEY', 'at least one inbound listener is required');
  if (config.policies.length === 0) problems.error(at(where, 'policies'), 'PRT_CONFIG_MISSING_KEY', 'at least one policy path is required (Portcullis never runs without policy)');
}

/** `portcullis run` settings from argv (+ `--config FILE`). Flags win over the file; defaults from the schema. */
export async function loadConfig(argv: readonly string[], deps: LoadConfigDeps): Promise<LoadConfigResult> {
  const problems = new Problems();
  const flags = readFlags(argv, configSchema, deps.cwd, true, problems);
  let fileValues = new Map<string, Located>();
  let configFile: string | undefined;
  if (flags.configFile) {
    configFile = isAbsolute(flags.configFile.path) ? flags.configFile.path : resolve(deps.cwd, flags.configFile.path);
    let text: string | undefined;
    try {
      text = await deps.readFile(configFile);
    } catch (err) {
      problems.error(at(flags.configFile.where, 'config'), 'PRT_CONFIG_FILE_UNREADABLE', `cannot read config file ${configFile}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (text !== undefined) fileValues = readConfigDocument(text, configFile, problems);
  }
  const missingWhere: Where = { origin: configFile ? { file: configFile, line: 1, column: 1 } : { file: argvOrigin, line: 1, column: 1 }, fieldPath: '', baseDir: deps.cwd };
  const v = resolveValues(configSchema, fileValues, flags.values, deps.cwd, missingWhere, problems);
  if (problems.list.some((d) => d.severity === 'error')) return { diagnostics: sortDiagnostics(problems.list) };

  const get = <T>(key: string): T => v.get(key) as T;
  const compile = buildCompileOptions(v);
  const limits: LimitsConfig = {
    maxHeaderBytes: get('limits.maxHeaderBytes'),
    maxHeaderCount: get('limits.maxHeaderCount'),
    headersTimeoutMs: get('limits.headersTimeout'),
    requestTimeoutMs: get('limits.requestTimeout'),
    idleTimeoutMs: get('limits.idleTimeout'),
    tlsHandshakeTimeoutMs: get('limits.tlsHandshakeTimeout'),
    h2MaxConcurrentStreams: get('limits.h2MaxConcurrentStreams'),
    h2MaxResetsPerSecond: get('limits.h2MaxResetsPerSecond'),
    maxConnections: get('limits.maxConnections'),
    upstreamConnectTimeoutMs: get('limits.upstreamConnectTimeout'),
    upstreamTimeoutMs: get('limits.upstreamTimeout'),
    drainTimeoutMs: get('limits.drainTimeout'),
    maxJwtBytes: get('limits.maxJwtBytes'),
  };
  const jwks: JwksConfig = {
    cacheTtlMs: get('jwks.cacheTtl'),
    refreshIntervalMs: get('jwks.refreshInterval'),
    staleGraceMs: get('jwks.staleGrace'),
    unknownKidMinIntervalMs: get('jwks.unknownKidMinInterval'),
    requireExpiration: get('jwks.requireExpiration'),
    clockSkewSeconds: Math.round(get<number>('jwks.clockSkew') / 1000),
  };
  const config: Config = {
    configFile,
    mode: get<'enforce' | 'audit'>('mode'),
    listeners: get('listeners'),
    outbound: get<OutboundListenerConfig[] | undefined>('outbound') ?? [],
    admin: get('admin'),
    policies: get('policies'),
    tls: {
      certFile: get('cert'),
      keyFile: get('key'),
      trustBundleFile: get('trustBundle'),
      trustDomains: get<string[] | undefined>('trustDomains') ?? [compile.workload.trustDomain, ...compile.workload.trustDomainAliases],
    },
    compile,
    pathNormalization: compile.pathNormalization,
    rejectEncodedSlashes: get('rejectEncodedSlashes'),
    decisionLog: { destination: get('decisionLog'), maxBufferedEvents: get('decisionLogBuffer') },
    logLevel: get('logLevel'),
    limits,
    jwks,
  };
  crossChecks(config, problems, missingWhere);
  if (problems.list.some((d) => d.severity === 'error')) return { diagnostics: sortDiagnostics(problems.list) };
  return { config };
}

/** File order, then line and column: the order a person reads the file in. */
function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return list.map((d, i) => ({ d, i })).sort((a, b) =>
    a.d.origin.file === b.d.origin.file
      ? a.d.origin.line - b.d.origin.line || a.d.origin.column - b.d.origin.column || a.i - b.i
      : a.d.origin.file < b.d.origin.file ? -1 : 1).map((x) => x.d);
}

/** True when argv asks for `--help` (checked before loading so help works without a valid config). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h');
}

export interface WorkloadFlagsResult {
  options: CompileOptions;
  diagnostics: Diagnostic[];
  /** argv with the workload flags (and their values) removed, for the command's own parser. */
  rest: string[];
}

/**
 * The workload flags shared by `run`, `check` and `explain` (--namespace, --labels, ...), with the
 * same meaning and defaults as the `run` keys. `--namespace` defaults to `default` here (run requires it).
 * Flags this function does not know are left in `rest`.
 */
export function parseWorkloadFlags(argv: readonly string[], cwd = process.cwd()): WorkloadFlagsResult {
  const problems = new Problems();
  const specs = configSchema.filter((k) => k.workload);
  const flags = readFlags(argv, specs, cwd, false, problems);
  if (!flags.values.has('namespace')) {
    const where = defaultWhere('namespace', cwd);
    flags.values.set('namespace', flagScalar('default', where));
  }
  const v = resolveValues(specs, new Map(), flags.values, cwd, defaultWhere('', cwd), problems);
  return { options: problems.list.some((d) => d.severity === 'error') ? defaultCompileOptions() : buildCompileOptions(v), diagnostics: problems.list, rest: flags.rest };
}

/** CompileOptions with every schema default (namespace `default`); used when flags had errors. */
export function defaultCompileOptions(): CompileOptions {
  const problems = new Problems();
  const specs = configSchema.filter((k) => k.workload);
  const flagValues = new Map<string, Located>([['namespace', flagScalar('default', defaultWhere('namespace', '/'))]]);
  return buildCompileOptions(resolveValues(specs, new Map(), flagValues, '/', defaultWhere('', '/'), problems));
}
