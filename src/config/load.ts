// Owns turning argv + an optional YAML file into a validated Config, or Diagnostic[] (never a throw).
// Strict like PC-29 (security.md): unknown keys are errors, flags win over the file, defaults from schema.ts.

import { isAbsolute, resolve } from 'node:path';
import type { Diagnostic } from '../policy/diagnostics.js';
import { configSchema } from './schema.js';
import type { Config, HostPort, OutboundListenerConfig } from './types.js';
import { argvOrigin, at, Problems, type Located, type Where } from './located.js';
import { readConfigDocument } from './config-file.js';
import { readFlags } from './flags.js';
import { resolveValues } from './converters.js';
import { buildCompileOptions } from './workload.js';
import { assembleJwks, assembleLimits } from './request-settings.js';
import { Code } from '../codes.js';
import { readDownwardApi } from './downward-api.js';
import type { CaptureMode } from '../observe/capture.js';

// The config module's public surface, wherever each part lives.
export { argvOrigin } from './located.js';
export { parseDuration, parseHostPort, parseSize } from './converters.js';
export { defaultCompileOptions, parseWorkloadFlags, workloadFlagOptions, type WorkloadFlagsResult } from './workload.js';
export { defaultRequestSettings, type RequestSettings } from './request-settings.js';

export interface LoadConfigDeps {
  readFile: (path: string) => Promise<string>;
  cwd: string;
}

export type LoadConfigResult = { config: Config } | { diagnostics: Diagnostic[] };

/** Listener names and addresses are unique; a sidecar without a listener or a policy does not start. */
function crossChecks(config: Config, problems: Problems, where: Where): void {
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  const claim = (name: string, hp: HostPort, path: string) => {
    if (hp.port === 0) return;
    const key = `${hp.host}:${hp.port}`;
    const owner = addresses.get(key);
    if (owner) problems.error(at(where, path), Code.CONFIG_CONFLICT, `${key} is already used by ${owner}`);
    else addresses.set(key, name);
  };
  config.listeners.forEach((l, i) => {
    if (names.has(l.name)) problems.error(at(where, `listeners[${i}].name`), Code.CONFIG_CONFLICT, `listener name '${l.name}' is used twice`);
    names.add(l.name);
    claim(`listener '${l.name}'`, l.listen, `listeners[${i}].listen`);
  });
  config.outbound.forEach((o, i) => {
    if (names.has(o.name)) problems.error(at(where, `outbound[${i}].name`), Code.CONFIG_CONFLICT, `listener name '${o.name}' is used twice`);
    names.add(o.name);
    claim(`outbound '${o.name}'`, o.listen, `outbound[${i}].listen`);
  });
  claim('the admin listener', config.admin, 'admin');
  if (config.statusListen) claim('the status listener', config.statusListen, 'statusListen');
  if (config.listeners.length === 0) problems.error(at(where, 'listeners'), Code.CONFIG_MISSING_KEY, 'at least one inbound listener is required');
  if (config.policies.length === 0) problems.error(at(where, 'policies'), Code.CONFIG_MISSING_KEY, 'at least one policy path is required (Portcullis never runs without policy)');
}

/** `portcullis run` settings from argv (+ `--config FILE`). Flags win over the file; defaults from the schema. */
export async function loadConfig(argv: readonly string[], deps: LoadConfigDeps): Promise<LoadConfigResult> {
  const problems = new Problems();
  const flags = readFlags(argv, configSchema, deps.cwd, true, problems);
  const file = flags.configFile ? await readConfigFile(flags.configFile, deps, problems) : { path: undefined, values: new Map<string, Located>() };
  // An unreadable --config explains every missing key that would follow: report it alone.
  if (problems.list.some((d) => d.code === Code.CONFIG_FILE_UNREADABLE)) return { diagnostics: problems.list.filter((d) => d.code === Code.CONFIG_FILE_UNREADABLE) };
  const missingWhere: Where = { origin: { file: file.path ?? argvOrigin, line: 1, column: 1 }, fieldPath: '', baseDir: deps.cwd };
  const workloadFrom = flags.values.get('workloadFrom') ?? file.values.get('workloadFrom');
  const flagValues = workloadFrom ? await withDownwardApi(workloadFrom, flags.values, file.values, deps, problems) : flags.values;
  const v = resolveValues(configSchema, file.values, flagValues, deps.cwd, missingWhere, problems);
  if (problems.hasErrors()) return { diagnostics: sortDiagnostics(problems.list) };
  const config = assembleConfig(v, file.path, new Set([...file.values.keys(), ...flags.values.keys()]));
  crossChecks(config, problems, missingWhere);
  if (problems.hasErrors()) return { diagnostics: sortDiagnostics(problems.list) };
  return { config };
}

const downwardKeys = ['namespace', 'labels', 'annotations'] as const;

/**
 * `workloadFrom`: namespace, labels and annotations come from a Downward API directory (read now, watched
 * by run), taking the place of those keys; giving both is a conflict, never a silent override.
 */
async function withDownwardApi(ref: Located, flagValues: Map<string, Located>, fileValues: Map<string, Located>, deps: LoadConfigDeps, problems: Problems): Promise<Map<string, Located>> {
  const out = new Map(flagValues);
  if (ref.type !== 'scalar' || typeof ref.value !== 'string' || ref.value === '') {
    problems.error(ref.where, Code.CONFIG_TYPE, 'expected a directory path');
    return out;
  }
  const dir = isAbsolute(ref.value) ? ref.value : resolve(ref.where.baseDir, ref.value);
  for (const key of downwardKeys) {
    const given = flagValues.get(key) ?? fileValues.get(key);
    if (given) problems.error(given.where, Code.CONFIG_CONFLICT, `'${key}' comes from workloadFrom (${dir}); remove it here`);
  }
  const read = await readDownwardApi(dir, deps.readFile);
  if ('problems' in read) {
    for (const p of read.problems) problems.error({ origin: { file: p.file, line: p.line, column: 1 }, fieldPath: 'workloadFrom', baseDir: dir }, Code.CONFIG_INVALID_VALUE, p.message);
    return out;
  }
  const where = (name: string, fieldPath: string): Where => ({ origin: { file: `${dir}/${name}`, line: 1, column: 1 }, fieldPath, baseDir: dir });
  out.set('namespace', { type: 'scalar', value: read.facts.namespace, text: read.facts.namespace, where: where('namespace', 'namespace') });
  for (const key of ['labels', 'annotations'] as const) {
    const entries = Object.entries(read.facts[key]).map(([k, value]) => {
      const w = where(key, `${key}.${k}`);
      return { key: k, keyWhere: w, value: { type: 'scalar' as const, value, text: value, where: w } };
    });
    out.set(key, { type: 'map', entries, where: where(key, key) });
  }
  return out;
}

async function readConfigFile(ref: { path: string; where: Where }, deps: LoadConfigDeps, problems: Problems): Promise<{ path: string; values: Map<string, Located> }> {
  const path = isAbsolute(ref.path) ? ref.path : resolve(deps.cwd, ref.path);
  let text: string;
  try {
    text = await deps.readFile(path);
  } catch (err) {
    problems.error(at(ref.where, 'config'), Code.CONFIG_FILE_UNREADABLE, `cannot read config file ${path}: ${err instanceof Error ? err.message : String(err)}`);
    return { path, values: new Map() };
  }
  return { path, values: readConfigDocument(text, path, problems) };
}

/** The typed Config from resolved key values: the one place a schema key becomes a Config field. */
function assembleConfig(v: ReadonlyMap<string, unknown>, configFile: string | undefined, configured: ReadonlySet<string>): Config {
  const get = <T>(key: string): T => v.get(key) as T;
  const compile = buildCompileOptions(v, configured);
  return {
    configFile,
    mode: get<'enforce' | 'audit'>('mode'),
    listeners: get('listeners'),
    outbound: get<OutboundListenerConfig[] | undefined>('outbound') ?? [],
    admin: get('admin'),
    statusListen: get<HostPort | undefined>('statusListen'),
    workloadFrom: get<string | undefined>('workloadFrom'),
    policies: get('policies'),
    peersFile: get<string | undefined>('peers'),
    jwksCaFile: get<string | undefined>('jwksCa'),
    tls: {
      certFile: get('cert'),
      keyFile: get('key'),
      trustBundleFile: get('trustBundle'),
      crlFiles: get<string[] | undefined>('crls') ?? [],
      trustDomains: get<string[] | undefined>('trustDomains') ?? [compile.workload.trustDomain, ...compile.workload.trustDomainAliases],
    },
    compile,
    rejectEncodedSlashes: compile.rejectEncodedSlashes === true,
    decisionLog: {
      destination: get('decisionLog'),
      maxBufferedEvents: get('decisionLogBuffer'),
      capture: { mode: get<CaptureMode>('decisionLogCapture'), redactHeaders: (get<string[] | undefined>('decisionLogRedactHeaders') ?? []).map((h) => h.trim().toLowerCase()) },
    },
    logLevel: get('logLevel'),
    concurrency: get('concurrency'),
    limits: assembleLimits(get),
    jwks: assembleJwks(get),
  };
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

