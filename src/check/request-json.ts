// Owns reading the request JSON of `portcullis check`/`explain` strictly, as policies are read: every
// problem with file:line:col, the field path, and a did-you-mean for a misspelt field; never a guess.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics.js';
import { closest } from '../policy/suggest.js';
import type { CheckRequest } from './decide.js';
import { Code } from '../codes.js';

type FieldKind = 'string' | 'nullableString' | 'port' | 'number' | 'headers' | 'protocol';
const fields: Record<keyof CheckRequest, FieldKind> = {
  method: 'string', path: 'string', host: 'string', headers: 'headers', peer: 'nullableString',
  sourceIp: 'string', remoteIp: 'string', destinationIp: 'string', port: 'port', sni: 'string',
  protocol: 'protocol', time: 'number',
};
const protocols = ['http', 'grpc', 'tcp'];

/** A request file (or one NDJSON line) that is not a valid request; `message` has one line per problem. */
export class RequestJsonError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) { super(diagnostics.map(formatDiagnostic).join('\n')); }
}

function hint(name: string): string {
  const best = closest(name, Object.keys(fields), (f) => [f]);
  return best ? ` (did you mean '${best}'?)` : '';
}

/**
 * Parses one request. `file` names the source in diagnostics and `lineOffset` places an NDJSON line in its
 * file. Throws RequestJsonError listing every problem.
 */
export function parseRequestJson(text: string, file: string, lineOffset = 0): CheckRequest {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, version: '1.2' });
  const diagnostics: Diagnostic[] = [];
  const where = (offset: number, fieldPath: string, code: string, message: string): void => {
    const pos = lineCounter.linePos(offset);
    diagnostics.push({ severity: 'error', code, message, origin: { file, line: pos.line + lineOffset, column: pos.col }, fieldPath });
  };
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{')) {
    where(text.length - trimmed.length, '', Code.CHECK_REQUEST, 'a request is a JSON object ({"method": "GET", "path": "/", ...})');
    throw new RequestJsonError(diagnostics);
  }
  for (const e of doc.errors) where(e.pos[0], '', Code.CHECK_REQUEST, `not valid JSON: ${e.message.split('\n')[0]}`);
  if (diagnostics.length > 0) throw new RequestJsonError(diagnostics);
  const root = doc.contents;
  if (!isMap(root)) {
    where(0, '', Code.CHECK_REQUEST, 'a request is a JSON object');
    throw new RequestJsonError(diagnostics);
  }
  const start = (n: YamlNode | null | undefined): number => n?.range?.[0] ?? 0;
  for (const pair of root.items) {
    const keyNode = pair.key as YamlNode | null;
    const name = isScalar(keyNode) ? String(keyNode.value) : '';
    const kind = (fields as Record<string, FieldKind | undefined>)[name];
    if (!kind) { where(start(keyNode), name, Code.CHECK_UNKNOWN_FIELD, `unknown request field '${name}'${hint(name)}`); continue; }
    const value = pair.value as YamlNode | null;
    const v: unknown = isScalar(value) ? value.value : undefined;
    const at = start(value ?? keyNode);
    switch (kind) {
      case 'string':
        if (typeof v !== 'string') where(at, name, Code.CHECK_FIELD_TYPE, `'${name}' must be a string`);
        break;
      case 'nullableString':
        if (typeof v !== 'string' && v !== null) where(at, name, Code.CHECK_FIELD_TYPE, `'${name}' must be a SPIFFE ID string or null (a plaintext caller)`);
        break;
      case 'port':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) where(at, name, Code.CHECK_FIELD_TYPE, `'${name}' must be a port number (1-65535)`);
        break;
      case 'number':
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) where(at, name, Code.CHECK_FIELD_TYPE, `'${name}' must be a non-negative number`);
        break;
      case 'protocol':
        if (typeof v !== 'string' || !protocols.includes(v)) where(at, name, Code.CHECK_FIELD_TYPE, `'${name}' must be one of ${protocols.join(', ')}`);
        break;
      case 'headers':
        if (!isMap(value)) { where(at, name, Code.CHECK_FIELD_TYPE, `'headers' must be an object of name: value (a string or an array of strings)`); break; }
        for (const h of value.items) {
          const hv = h.value as YamlNode | null;
          const hname = isScalar(h.key) ? String(h.key.value) : '';
          const ok = (isScalar(hv) && typeof hv.value === 'string') || (isSeq(hv) && hv.items.every((i) => isScalar(i) && typeof i.value === 'string'));
          if (!ok) where(start(hv ?? (h.key as YamlNode)), `headers.${hname}`, Code.CHECK_FIELD_TYPE, `header '${hname}' must be a string or an array of strings`);
        }
        break;
    }
  }
  if (diagnostics.length > 0) throw new RequestJsonError(diagnostics);
  return root.toJSON() as CheckRequest;
}
