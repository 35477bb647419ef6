// Owns turning YAML text into PolicyDocuments exactly as `kubectl apply` reads it: multi-document
// streams, comments, anchors and merge keys, `kind: List`; every field keeps its file:line:column.
//
// Two parsers with one job each: js-yaml reads values (15x faster on large sets), `yaml` gives positions,
// built lazily only when a diagnostic asks for one. Syntax errors and alias-heavy sources go through
// `yaml` alone, whose alias cap keeps a YAML bomb from exploding memory.

import jsyaml from 'js-yaml';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import type { Diagnostic, SourceOrigin } from './diagnostics.js';
import type { JsonValue, PolicyDocument, PolicySource } from './documents-types.js';
import { Code } from '../codes.js';

export interface ParsedSources {
  documents: PolicyDocument[];
  diagnostics: Diagnostic[];
}

/** Core schema + merge keys: no timestamps (creationTimestamp stays a string), like the `yaml` path. */
// js-yaml exports its built-in types at run time; @types/js-yaml does not declare them.
const mergeKeyType = (jsyaml as unknown as { types: { merge: jsyaml.Type } }).types.merge;
const valueSchema = jsyaml.CORE_SCHEMA.extend({ implicit: [mergeKeyType] });
/** An alias (`*name`) anywhere: such sources take the `yaml` path with its alias limit. */
const aliasPattern = /(?:^|[\s[{,:-])\*[^\s,\]}]/m;
const maxAliasCount = 1000;

/** Parses every source; problems become diagnostics (YAML syntax, missing apiVersion/kind/name). */
export function parsePolicySources(sources: readonly PolicySource[]): ParsedSources {
  const documents: PolicyDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const source of sources) parseOne(source, documents, diagnostics);
  return { documents, diagnostics };
}

/** Positions of one source, computed once on first use. */
class SourcePositions {
  #docs: Document.Parsed[] | undefined;
  #lineCounter = new LineCounter();
  constructor(private readonly source: PolicySource) {}

  get docs(): Document.Parsed[] {
    if (!this.#docs) {
      const parsed = parseAllDocuments(this.source.text, { lineCounter: this.#lineCounter, merge: true, uniqueKeys: true });
      this.#docs = Array.isArray(parsed) ? parsed : [parsed as unknown as Document.Parsed];
    }
    return this.#docs;
  }

  at(offset: number): SourceOrigin {
    void this.docs; // the line counter fills while parsing
    const pos = this.#lineCounter.linePos(offset);
    return { file: this.source.file, line: pos.line, column: pos.col };
  }

  /** Node of the `index`-th non-empty document, or undefined when the two parsers disagree on counts. */
  root(index: number): YamlNode | undefined {
    let seen = 0;
    for (const doc of this.docs) {
      if (isEmptyDocument(doc)) continue;
      if (seen === index) return doc.contents as YamlNode;
      seen++;
    }
    return undefined;
  }
}

function isEmptyDocument(doc: Document.Parsed): boolean {
  const root = doc.contents as YamlNode | null;
  return root === null || (isScalar(root) && root.value === null);
}

function parseOne(source: PolicySource, out: PolicyDocument[], diagnostics: Diagnostic[]): void {
  const positions = new SourcePositions(source);
  let values: unknown[] | undefined;
  if (!aliasPattern.test(source.text)) {
    try {
      values = [];
      jsyaml.loadAll(source.text, (doc) => { values!.push(doc); }, { schema: valueSchema, json: false });
    } catch {
      values = undefined; // report with the positioned parser below
    }
  }
  if (values === undefined) {
    values = valuesFromPositionedParse(positions, diagnostics);
    if (values === undefined) return;
  }
  const nonEmpty = values.filter((v) => v !== null && v !== undefined);
  const starts = documentStartLines(source.text);
  const cheapStarts = starts.length === nonEmpty.length ? starts : undefined;
  let index = 0;
  for (const value of nonEmpty) {
    const docIndex = index++;
    const nodeOf = () => positions.root(docIndex);
    const startLine = cheapStarts?.[docIndex];
    if (!isPlainObject(value)) {
      diagnostics.push({ code: Code.DOC_NOT_OBJECT, severity: 'error', message: 'a policy document must be a mapping', origin: originOf(positions, nodeOf(), source.file), fieldPath: '' });
      continue;
    }
    if (value.kind === 'List' && Array.isArray(value.items)) {
      value.items.forEach((item, i) => {
        const itemNode = () => {
          const root = nodeOf();
          const items = isMap(root) ? (root.get('items', true) as YamlNode | undefined) : undefined;
          return isSeq(items) ? (items.items[i] as YamlNode | undefined) ?? root : root;
        };
        addDocument(source.file, item, itemNode, positions, out, diagnostics, `items[${i}].`, undefined);
      });
      continue;
    }
    addDocument(source.file, value, nodeOf, positions, out, diagnostics, '', startLine);
  }
}

/** The slow, fully positioned path: syntax errors with line/column, alias limits. */
function valuesFromPositionedParse(positions: SourcePositions, diagnostics: Diagnostic[]): unknown[] | undefined {
  const values: unknown[] = [];
  let failed = false;
  for (const doc of positions.docs) {
    if (doc.errors.length > 0) {
      failed = true;
      for (const err of doc.errors) {
        diagnostics.push({ code: Code.YAML_SYNTAX, severity: 'error', message: firstLine(err.message), origin: positions.at(err.pos[0]), fieldPath: '' });
      }
      continue;
    }
    if (isEmptyDocument(doc)) continue;
    try {
      values.push(doc.toJS({ maxAliasCount }));
    } catch (e) {
      failed = true;
      const root = doc.contents as YamlNode;
      diagnostics.push({ code: Code.YAML_SYNTAX, severity: 'error', message: (e as Error).message, origin: positions.at(root.range?.[0] ?? 0), fieldPath: '' });
    }
  }
  return failed ? undefined : values;
}

/**
 * 1-based first content line of each non-empty document, from document markers alone (a `---` at
 * column 0 always starts a document, even inside a block scalar), so summaries need no positioned parse.
 */
function documentStartLines(text: string): number[] {
  const starts: number[] = [];
  let pending = true; // looking for the first content line of the current document
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^---(?:[ \t]|$)/.test(line)) {
      const rest = line.slice(3).trim();
      pending = true;
      if (rest !== '' && !rest.startsWith('#')) { starts.push(i + 1); pending = false; }
      continue;
    }
    if (/^\.\.\.(?:[ \t]|$)/.test(line)) { pending = true; continue; }
    if (!pending) continue;
    const t = line.trim();
    if (t === '' || t.startsWith('#') || (line.startsWith('%'))) continue;
    starts.push(i + 1);
    pending = false;
  }
  return starts;
}

function originOf(positions: SourcePositions, node: YamlNode | undefined, file: string): SourceOrigin {
  return node?.range ? positions.at(node.range[0]) : { file, line: 1, column: 1 };
}

function addDocument(
  file: string, value: unknown, nodeOf: () => YamlNode | undefined, positions: SourcePositions,
  out: PolicyDocument[], diagnostics: Diagnostic[], pathPrefix: string, startLine: number | undefined,
): void {
  let origin: SourceOrigin | undefined = startLine === undefined ? undefined : { file, line: startLine, column: 1 };
  const originNow = () => (origin ??= originOf(positions, nodeOf(), file));
  if (!isPlainObject(value)) {
    diagnostics.push({ code: Code.DOC_NOT_OBJECT, severity: 'error', message: 'a policy document must be a mapping', origin: originNow(), fieldPath: pathPrefix.replace(/\.$/, '') });
    return;
  }
  const missing = (field: string) => diagnostics.push({
    code: Code.DOC_MISSING_FIELD, severity: 'error', message: `document has no ${field}`, origin: originNow(), fieldPath: pathPrefix + field,
  });
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') { missing('apiVersion'); return; }
  if (typeof value.kind !== 'string' || value.kind === '') { missing('kind'); return; }
  const metadata = isPlainObject(value.metadata) ? value.metadata : {};
  if (typeof metadata.name !== 'string' || metadata.name === '') { missing('metadata.name'); return; }
  const locate = (fieldPath: string): SourceOrigin => {
    const node = nodeOf();
    return (node && locateIn(node, fieldPath, (o) => positions.at(o))) ?? originNow();
  };
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
    get origin() { return originNow(); },
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
