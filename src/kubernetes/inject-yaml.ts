// Owns `portcullis inject` on text: multi-document YAML in, the same YAML with the sidecar out. Untouched
// documents are copied byte for byte; changed ones are edited in place through the `yaml` Document API.

import { isMap, isSeq, parseAllDocuments, type Document } from 'yaml';
import { injectPod, type JsonPatchAdd } from './injector.js';
import type { InjectorOptions } from './sidecar.js';
import { findPods } from './workloads.js';

export interface InjectReport {
  /** `Deployment demo/service-b`, ... */
  name: string;
  outcome: 'injected' | 'skipped' | 'refused';
  detail: string;
  warnings: string[];
}

export type InjectYamlResult =
  | { ok: true; output: string; reports: InjectReport[]; changed: boolean }
  | { ok: false; error: string; reports: InjectReport[] };

function unescapeSegment(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Applies one `add` to a YAML document at `prefix` + the op's pointer, keeping comments and styles elsewhere. */
function applyAdd(doc: Document, prefix: (string | number)[], op: JsonPatchAdd): void {
  const segments = op.path.split('/').slice(1).map(unescapeSegment);
  const last = segments.pop() as string;
  const parentPath = [...prefix, ...segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s))];
  const parent = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  const node = doc.createNode(op.value);
  if (isSeq(parent)) {
    if (last === '-') parent.items.push(node);
    else parent.items.splice(Number(last), 0, node);
  } else if (isMap(parent)) {
    parent.set(doc.createNode(last), node);
  } else {
    throw new Error(`cannot apply ${op.path}: its parent is not a mapping or sequence`);
  }
}

/** Start offsets of each document's text, so unchanged documents are copied from the source verbatim. */
function documentStarts(docs: Document[]): number[] {
  return docs.map((d, i) => (i === 0 ? 0 : (d.range?.[0] ?? 0)));
}

export function injectYaml(source: string, options: InjectorOptions): InjectYamlResult {
  const docs = parseAllDocuments(source) as Document[] | { errors: unknown[] };
  if (!Array.isArray(docs)) return { ok: false, error: 'not a YAML stream', reports: [] };
  const reports: InjectReport[] = [];
  for (const [i, d] of docs.entries()) {
    if (d.errors.length > 0) {
      const e = d.errors[0] as { message: string; linePos?: { line: number; col: number }[] };
      const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : `document ${i + 1}`;
      return { ok: false, error: `YAML error at ${where}: ${e.message.split('\n')[0]}`, reports };
    }
  }
  const starts = documentStarts(docs);
  const pieces: string[] = [];
  let changed = false;
  let refused = false;
  for (const [i, doc] of docs.entries()) {
    const original = source.slice(starts[i] as number, i + 1 < docs.length ? starts[i + 1] : source.length);
    const pods = findPods(doc.toJS({ maxAliasCount: 100 }));
    let docChanged = false;
    for (const loc of pods) {
      const result = injectPod(loc.pod, options);
      if (result.outcome === 'injected') {
        for (const op of result.patch) applyAdd(doc, loc.path, op);
        docChanged = true;
        reports.push({ name: loc.name, outcome: 'injected', detail: 'sidecar added', warnings: result.warnings });
      } else if (result.outcome === 'skipped') {
        reports.push({ name: loc.name, outcome: 'skipped', detail: result.reason, warnings: [] });
      } else {
        refused = true;
        reports.push({ name: loc.name, outcome: 'refused', detail: result.message, warnings: [] });
      }
    }
    if (docChanged) {
      changed = true;
      let text = doc.toString({ flowCollectionPadding: false, lineWidth: 0 });
      // A document that was followed by another keeps ending in a newline before the next `---`.
      if (!text.endsWith('\n')) text += '\n';
      pieces.push(text);
    } else {
      pieces.push(original);
    }
  }
  if (refused) {
    const lines = reports.filter((r) => r.outcome === 'refused').map((r) => `${r.name}: ${r.detail}`);
    return { ok: false, error: `nothing written; fix these first:\n${lines.join('\n')}`, reports };
  }
  return { ok: true, output: pieces.join(''), reports, changed };
}
