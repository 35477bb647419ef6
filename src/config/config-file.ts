// Owns reading the config file into located values: YAML nodes with file/line/column, grouped keys
// (`limits.*`, `jwks.*`) flattened, unknown keys refused with a suggestion (PC-29, security.md).

import { dirname } from 'node:path';
import { closest } from '../policy/suggest.js';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { configSchema, keyGroups } from './schema.js';
import { Problems, type Located, type LocatedEntry, type Where } from './located.js';
import { Code } from '../codes.js';

function fromYamlNode(node: YamlNode | null | undefined, doc: Document, lines: LineCounter, file: string, fieldPath: string, baseDir: string, problems: Problems, depth = 0): Located | undefined {
  const where = (n: YamlNode | null | undefined): Where => {
    const offset = n?.range?.[0] ?? 0;
    const pos = lines.linePos(offset);
    return { origin: { file, line: pos.line, column: pos.col }, fieldPath, baseDir };
  };
  if (depth > 16) return problems.error(where(node), Code.CONFIG_TYPE, 'nesting is too deep');
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
    const entries: LocatedEntry[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      const key = keyNode && isScalar(keyNode) ? String(keyNode.value) : undefined;
      const keyWhere = where(keyNode);
      if (key === undefined) { problems.error(keyWhere, Code.CONFIG_TYPE, 'keys must be plain strings'); continue; }
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
  return problems.error(where(node), Code.CONFIG_TYPE, 'unsupported YAML node');
}

/**
 * One YAML (or JSON) text as located values, YAML problems reported under `code`; undefined when the text
 * does not parse. An empty document is a null scalar.
 */
export function parseLocatedYaml(text: string, file: string, problems: Problems, code: string): Located | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  for (const e of [...doc.errors, ...doc.warnings]) {
    const pos = lines.linePos(e.pos[0]);
    problems.list.push({
      code, severity: doc.errors.includes(e as never) ? 'error' : 'warning',
      message: e.message.split('\n')[0] ?? e.message, origin: { file, line: pos.line, column: pos.col }, fieldPath: '',
    });
  }
  if (doc.errors.length > 0) return undefined;
  return fromYamlNode(doc.contents as YamlNode | null, doc, lines, file, '', dirname(file), problems);
}

// Config file

export function readConfigDocument(text: string, file: string, problems: Problems): Map<string, Located> {
  const values = new Map<string, Located>();
  const root = parseLocatedYaml(text, file, problems, Code.CONFIG_YAML);
  if (!root || (root.type === 'scalar' && root.value === null)) return values;
  if (root.type !== 'map') { problems.error(root.where, Code.CONFIG_TYPE, 'the config file must be a YAML map of keys'); return values; }
  for (const entry of root.entries) {
    if (keyGroups.includes(entry.key)) {
      if (entry.value.type !== 'map') { problems.error(entry.value.where, Code.CONFIG_TYPE, `'${entry.key}' must be a map`); continue; }
      for (const sub of entry.value.entries) {
        const full = `${entry.key}.${sub.key}`;
        if (!configSchema.some((k) => k.key === full)) {
          const allowed = configSchema.filter((k) => k.key.startsWith(entry.key + '.')).map((k) => k.key.slice(entry.key.length + 1));
          problems.error(sub.keyWhere, Code.CONFIG_UNKNOWN_KEY, `unknown key '${sub.key}' in ${entry.key} (allowed: ${allowed.join(', ')})`);
          continue;
        }
        values.set(full, sub.value);
      }
      continue;
    }
    if (!configSchema.some((k) => k.key === entry.key)) {
      problems.error(entry.keyWhere, Code.CONFIG_UNKNOWN_KEY, `unknown key '${entry.key}'${suggest(entry.key)}`);
      continue;
    }
    values.set(entry.key, entry.value);
  }
  return values;
}

function suggest(key: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_.]/g, '');
  const best = closest(key, configSchema, (k) => [k.key, k.flag, k.key.split('.').pop() as string], norm);
  return best ? ` (did you mean '${best.key}'?)` : '';
}
