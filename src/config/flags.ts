// Owns reading argv into located values: one parseArgs pass over the schema's flags, repeated flags
// gathered per key, `k=v,...` pairs split, and argv positions kept for diagnostics.

import { parseArgs } from 'node:util';
import type { KeySpec } from './schema.js';
import { argvOrigin, at, flagScalar, splitList, type Located, type LocatedEntry, type Problems, type Where } from './located.js';
import { Code } from '../codes.js';
import { closest } from '../policy/suggest.js';

/** `k=v,k2=v2` -> map entries (split at the first `=`); reports entries without `=`. */
function flagPairs(text: string, where: Where, problems: Problems): LocatedEntry[] {
  const entries: LocatedEntry[] = [];
  for (const part of splitList(text)) {
    const eq = part.indexOf('=');
    if (eq <= 0) { problems.error(where, Code.CONFIG_TYPE, `expected key=value, got '${part}'`); continue; }
    const key = part.slice(0, eq).trim();
    const w = at(where, where.fieldPath ? `${where.fieldPath}.${key}` : key);
    entries.push({ key, keyWhere: w, value: flagScalar(part.slice(eq + 1).trim(), w) });
  }
  return entries;
}

/** All occurrences of one flag -> one Located value in the shape its kind expects. */
export function fromFlag(spec: KeySpec, occurrences: { text: string; where: Where }[], problems: Problems): Located | undefined {
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

export type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

export function flagOptions(specs: readonly KeySpec[]): ParseArgsOptions {
  const options: ParseArgsOptions = {};
  for (const k of specs) options[k.flag] = { type: k.kind === 'boolean' ? 'boolean' : 'string', multiple: true };
  return options;
}

export interface FlagValues {
  /** Schema key -> located value. */
  values: Map<string, Located>;
  /** argv not consumed by the recognized flags (only when unknown flags are tolerated). */
  rest: string[];
  configFile: { path: string; where: Where } | undefined;
  help: boolean;
}

/** ` (did you mean '--trust-domain'?)` for a flag within two edits of a known one (or of its key). */
export function flagHint(name: string, specs: readonly Pick<KeySpec, 'key' | 'flag'>[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_.]/g, '');
  const best = closest(name, specs, (k) => [k.flag, k.key, k.key.split('.').pop() as string], norm);
  return best ? ` (did you mean '--${best.flag}'?)` : '';
}

export function readFlags(argv: readonly string[], specs: readonly KeySpec[], cwd: string, strictUnknown: boolean, problems: Problems): FlagValues {
  const options: ParseArgsOptions = { ...flagOptions(specs) };
  if (strictUnknown) { options['config'] = { type: 'string', multiple: true }; options['help'] = { type: 'boolean', multiple: true }; }
  const result: FlagValues = { values: new Map(), rest: [], configFile: undefined, help: false };
  let tokens;
  try {
    ({ tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, allowNegative: true, tokens: true }));
  } catch (err) {
    problems.error({ origin: { file: argvOrigin, line: 1, column: 1 }, fieldPath: '', baseDir: cwd }, Code.CONFIG_FLAG, err instanceof Error ? err.message : String(err));
    return result;
  }
  const consumed = new Set<number>();
  const occurrences = new Map<string, { text: string; where: Where }[]>();
  for (const token of tokens) {
    if (token.kind === 'option-terminator') { consumed.add(token.index); continue; }
    if (token.kind === 'positional') {
      if (strictUnknown) problems.error({ origin: { file: argvOrigin, line: 1, column: token.index + 1 }, fieldPath: '', baseDir: cwd }, Code.CONFIG_FLAG, `unexpected argument '${token.value}'`);
      continue;
    }
    const where: Where = { origin: { file: argvOrigin, line: 1, column: token.index + 1 }, fieldPath: '', baseDir: cwd };
    const declared = options[token.name];
    if (!declared) {
      if (strictUnknown) problems.error(where, Code.CONFIG_UNKNOWN_FLAG, `unknown flag '${token.rawName}'${flagHint(token.name, specs)} (see portcullis run --help)`);
      continue;
    }
    consumed.add(token.index);
    if (token.value !== undefined && token.inlineValue === false) consumed.add(token.index + 1);
    if (token.name === 'help') { result.help = true; continue; }
    if (declared.type === 'string' && token.value === undefined) {
      problems.error(where, Code.CONFIG_FLAG, `flag '${token.rawName}' needs a value`);
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
      problems.error(at(occ[1]!.where, spec.key), Code.CONFIG_FLAG, `flag '--${spec.flag}' given more than once`);
      continue;
    }
    const located = fromFlag(spec, occ, problems);
    if (located) result.values.set(spec.key, located);
  }
  result.rest = argv.filter((_, i) => !consumed.has(i));
  return result;
}
