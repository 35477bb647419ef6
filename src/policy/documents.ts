// Owns turning YAML text into PolicyDocuments exactly as `kubectl apply` reads it: multi-document
// streams, comments, anchors and merge keys, `kind: List`; every field keeps its file:line:column.

import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Node as YamlNode } from 'yaml';
import type { Diagnostic, SourceOrigin } from './diagnostics.js';
import type { JsonValue, PolicyDocument, PolicySource } from './documents-types.js';

export interface ParsedSources {
  documents: PolicyDocument[];
  diagnostics: Diagnostic[];
}

/** Parses every source; problems become diagnostics (YAML syntax, missing apiVersion/kind/name). */
export function parsePolicySources(sources: readonly PolicySource[]): ParsedSources {
  const documents: PolicyDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const source of sources) parseOne(source, documents, diagnostics);
  return { documents, diagnostics };
}

function parseOne(source: PolicySource, out: PolicyDocument[], diagnostics: Diagnostic[]): void {
  const lineCounter = new LineCounter();
  const streams = parseAllDocuments(source.text, { lineCounter, merge: true, uniqueKeys: true, prettyErrors: false });
  const docs = Array.isArray(streams) ? streams : [streams];
  const at = (offset: number): SourceOrigin => {
    const pos = lineCounter.linePos(offset);
    return { file: source.file, line: pos.line, column: pos.col };
  };
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        diagnostics.push({
          code: 'PRT_YAML_SYNTAX', severity: 'error', message: firstLine(err.message),
          origin: at(err.pos[0]), fieldPath: '',
        });
      }
      continue;
    }
    const root = doc.contents as YamlNode | null;
    if (root === null || (isScalar(root) && root.value === null)) continue; // empty document (`---` alone)
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      diagnostics.push({ code: 'PRT_YAML_SYNTAX', severity: 'error', message: (e as Error).message, origin: at(root.range?.[0] ?? 0), fieldPath: '' });
      continue;
    }
    if (!isPlainObject(value)) {
      diagnostics.push({ code: 'PRT_DOC_NOT_OBJECT', severity: 'error', message: 'a policy document must be a mapping', origin: at(root.range?.[0] ?? 0), fieldPath: '' });
      continue;
    }
    if (value.kind === 'List' && Array.isArray(value.items) && isMap(root)) {
      const itemsNode = root.get('items', true) as YamlNode | undefined;
      value.items.forEach((item, i) => {
        const itemNode = isSeq(itemsNode) ? (itemsNode.items[i] as YamlNode | undefined) : undefined;
        addDocument(source.file, item, itemNode ?? root, at, out, diagnostics, `items[${i}].`);
      });
      continue;
    }
    addDocument(source.file, value, root, at, out, diagnostics, '');
  }
}

function addDocument(
  file: string, value: unknown, node: YamlNode, at: (offset: number) => SourceOrigin,
  out: PolicyDocument[], diagnostics: Diagnostic[], pathPrefix: string,
): void {
  const origin = at(node.range?.[0] ?? 0);
  if (!isPlainObject(value)) {
    diagnostics.push({ code: 'PRT_DOC_NOT_OBJECT', severity: 'error', message: 'a policy document must be a mapping', origin, fieldPath: pathPrefix.replace(/\.$/, '') });
    return;
  }
  const locate = (fieldPath: string): SourceOrigin => locateIn(node, fieldPath, at) ?? origin;
  const missing = (field: string) => diagnostics.push({
    code: 'PRT_DOC_MISSING_FIELD', severity: 'error', message: `document has no ${field}`, origin, fieldPath: pathPrefix + field,
  });
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') { missing('apiVersion'); return; }
  if (typeof value.kind !== 'string' || value.kind === '') { missing('kind'); return; }
  const metadata = isPlainObject(value.metadata) ? value.metadata : {};
  if (typeof metadata.name !== 'string' || metadata.name === '') { missing('metadata.name'); return; }
  out.push({
    apiVersion: value.apiVersion,
    kind: value.kind,
    metadata: {
      name: metadata.name,
      namespace: typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : undefined,
      labels: stringMap(metadata.labels),
      annotations: stringMap(metadata.annotations),
      creationTimestamp: typeof metadata.creationTimestamp === 'string' ? metadata.creationTimestamp : undefined,
    },
    body: value as { [key: string]: JsonValue },
    origin,
    locate,
  });
}

/** Walks `spec.rules[0].from[1].source.principals` down the YAML node tree; nearest ancestor wins. */
function locateIn(root: YamlNode, fieldPath: string, at: (offset: number) => SourceOrigin): SourceOrigin | undefined {
  const steps = splitFieldPath(fieldPath);
  let node: unknown = root;
  let best: SourceOrigin | undefined = root.range ? at(root.range[0]) : undefined;
  for (const step of steps) {
    if (typeof step === 'number') {
      if (!isSeq(node)) break;
      node = node.items[step];
    } else {
      if (!isMap(node)) break;
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === step);
      if (!pair) break;
      // Point at the key: that is where a person looks for a misspelt or misplaced field.
      const key = pair.key as YamlNode;
      if (key.range) best = at(key.range[0]);
      node = pair.value;
      continue;
    }
    const n = node as YamlNode | undefined;
    if (n && n.range) best = at(n.range[0]);
  }
  return best;
}

/** `a.b[2].c` -> ['a','b',2,'c']; bracketed keys (`labels[app.kubernetes.io/name]`) stay whole. */
export function splitFieldPath(fieldPath: string): (string | number)[] {
  const steps: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[([^\]]*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(fieldPath)) !== null) {
    if (m[1] !== undefined) steps.push(m[1]);
    else if (m[2] !== undefined) steps.push(Number(m[2]));
    else if (m[3] !== undefined) steps.push(m[3]);
  }
  return steps;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isPlainObject(v)) return out;
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
