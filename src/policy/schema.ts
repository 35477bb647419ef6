// Owns the one structural-schema language every dialect describes its resources in (the OpenAPI subset
// Kubernetes CRDs use: typed scalars, enums, bounds, string maps, lists, objects with required fields)
// and the walker that reports unknown fields (with "did you mean"), wrong types and bad values.

import type { Diagnostic, Severity } from './diagnostics.js';
import type { JsonValue, PolicyDocument } from './documents-types.js';
import { closest } from './suggest.js';

export type Shape =
  | { readonly t: 'string'; readonly enumOf?: readonly string[]; readonly nonEmpty?: boolean; readonly maxLength?: number }
  | { readonly t: 'int'; readonly min?: number; readonly max?: number; readonly enumOf?: readonly number[] }
  /** Any finite number (a Go float64, e.g. Calico's `order`). */
  | { readonly t: 'number' }
  | { readonly t: 'bool' }
  /** Kubernetes `int-or-string`: a port number or a port name, unless `what` says what it stands for. */
  | { readonly t: 'intOrString'; readonly what?: string }
  | { readonly t: 'stringMap' }
  /** Anything: fields Portcullis never reads (Kubernetes-managed metadata, unenforced route parts). */
  | { readonly t: 'any' }
  | { readonly t: 'list'; readonly of: Shape; readonly min?: number; readonly max?: number }
  | { readonly t: 'object'; readonly fields: Readonly<Record<string, Shape>>; readonly required?: readonly string[] };

/** Builders, so a schema reads like the CRD it mirrors. */
export const s = {
  string: { t: 'string' } as Shape,
  nonEmptyString: { t: 'string', nonEmpty: true } as Shape,
  /** A string of at most `maxLength` characters (a CRD `maxLength`). */
  shortString: (maxLength: number): Shape => ({ t: 'string', maxLength }),
  number: { t: 'number' } as Shape,
  bool: { t: 'bool' } as Shape,
  intOrString: { t: 'intOrString' } as Shape,
  /** An int-or-string that stands for something other than a port (`a protocol name or number`). */
  intOrStringOf: (what: string): Shape => ({ t: 'intOrString', what }),
  stringMap: { t: 'stringMap' } as Shape,
  any: { t: 'any' } as Shape,
  strings: { t: 'list', of: { t: 'string' } } as Shape,
  oneOf: (...values: string[]): Shape => ({ t: 'string', enumOf: values }),
  int: (bounds: { min?: number; max?: number } = {}): Shape => ({ t: 'int', ...bounds }),
  intOneOf: (...values: number[]): Shape => ({ t: 'int', enumOf: values }),
  list: (of: Shape, bounds: { min?: number; max?: number } = {}): Shape => ({ t: 'list', of, ...bounds }),
  object: (fields: Record<string, Shape>, required?: readonly string[]): Shape => (required ? { t: 'object', fields, required } : { t: 'object', fields }),
};

/** Kubernetes ObjectMeta: what users set is checked, what the API server manages is accepted as is. */
export const objectMetadata: Shape = s.object({
  name: s.string, namespace: s.string, labels: s.stringMap, annotations: s.stringMap,
  creationTimestamp: s.any, uid: s.any, resourceVersion: s.any, generation: s.any, generateName: s.any,
  finalizers: s.any, ownerReferences: s.any, managedFields: s.any, deletionTimestamp: s.any,
  deletionGracePeriodSeconds: s.any, selfLink: s.any,
});

/** Kubernetes metav1.LabelSelector (matchLabels and matchExpressions). */
export const labelSelector: Shape = s.object({
  matchLabels: s.stringMap,
  matchExpressions: s.list(s.object({ key: s.string, operator: s.oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: s.strings }, ['key', 'operator'])),
});

export type ShapeProblemKind = 'unknown_field' | 'wrong_type' | 'null_field' | 'bad_value' | 'missing_field' | 'too_few' | 'too_many';

export interface ShapeProblem {
  kind: ShapeProblemKind;
  fieldPath: string;
  message: string;
}

export interface CheckShapeOptions {
  /**
   * Kubernetes drops an explicit null field. `ignore` does the same silently; `report` also says so
   * (a `null_field` problem, and a null list entry is a `wrong_type`). Default `ignore`.
   */
  nulls?: 'ignore' | 'report';
}

function typeName(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'object' : typeof v;
}

export function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walks `value` against `shape` from `path` (`''` or e.g. `spec`) and collects every problem. */
export function checkShape(value: JsonValue | undefined, shape: Shape, path: string, out: ShapeProblem[], options: CheckShapeOptions = {}): void {
  const at = (suffix: string) => (path === '' ? suffix : suffix.startsWith('[') ? path + suffix : `${path}.${suffix}`);
  const report = (kind: ShapeProblemKind, message: string, fieldPath = path) => out.push({ kind, fieldPath, message });
  if (shape.t === 'any' || value === undefined) return;
  if (value === null) {
    if (options.nulls === 'report') report('null_field', `${path} is null and is ignored (Kubernetes drops null fields); remove it or give it a value`);
    return;
  }
  switch (shape.t) {
    case 'string':
      if (typeof value !== 'string') { report('wrong_type', `${path} must be a string, found ${typeName(value)} (quote numbers: "8080")`); return; }
      if (shape.enumOf && !shape.enumOf.includes(value)) report('bad_value', `${path} must be one of ${shape.enumOf.join(', ')} (got "${value}")`);
      if (shape.nonEmpty && value === '') report('bad_value', `${path} must not be empty`);
      if (shape.maxLength !== undefined && value.length > shape.maxLength) report('too_many', `${path} is longer than ${shape.maxLength} characters`);
      return;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) report('wrong_type', `${path} must be a number, found ${typeName(value)}`);
      return;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) { report('wrong_type', `${path} must be an integer, found ${typeName(value)}`); return; }
      if (shape.enumOf && !shape.enumOf.includes(value)) report('bad_value', `${path} must be one of ${shape.enumOf.join(', ')} (got ${value})`);
      if ((shape.min !== undefined && value < shape.min) || (shape.max !== undefined && value > shape.max)) {
        report('bad_value', `${path} must be between ${shape.min ?? '-inf'} and ${shape.max ?? 'inf'} (got ${value})`);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') report('wrong_type', `${path} must be true or false, found ${typeName(value)}`);
      return;
    case 'intOrString':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) report('wrong_type', `${path} must be ${shape.what ?? 'a port number or a port name'}, found ${typeName(value)}`);
      return;
    case 'stringMap':
      if (!isObject(value)) { report('wrong_type', `${path} must be a map of strings, found ${typeName(value)}`); return; }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') report('wrong_type', `${path}[${k}] must be a string, found ${typeName(v)}`, `${path}[${k}]`);
      }
      return;
    case 'list':
      if (!Array.isArray(value)) { report('wrong_type', `${path} must be a list, found ${typeName(value)}`); return; }
      if (shape.min !== undefined && value.length < shape.min) report('too_few', `${path} needs at least ${shape.min} item(s)`);
      if (shape.max !== undefined && value.length > shape.max) report('too_many', `${path} allows at most ${shape.max} item(s)`);
      value.forEach((item, i) => {
        if (item === null && options.nulls === 'report') report('wrong_type', `${path}[${i}] is null; list entries must have a value`, `${path}[${i}]`);
        else checkShape(item, shape.of, at(`[${i}]`), out, options);
      });
      return;
    case 'object': {
      if (!isObject(value)) { report('wrong_type', `${path} must be an object, found ${typeName(value)}`); return; }
      for (const [k, v] of Object.entries(value)) {
        const sub = shape.fields[k];
        if (sub) { checkShape(v, sub, at(k), out, options); continue; }
        const known = Object.keys(shape.fields).filter((f) => shape.fields[f]?.t !== 'any');
        const hint = closest(k, known, (f) => [f]);
        report('unknown_field', `unknown field "${k}"${path ? ` in ${path}` : ''}${hint ? `; did you mean "${hint}"?` : ''} (known: ${known.join(', ')})`, at(k));
      }
      for (const r of shape.required ?? []) {
        if (value[r] === undefined || value[r] === null) report('missing_field', `${at(r)} is required`);
      }
      return;
    }
  }
}

/** A dialect's stable code (and severity) for each kind of problem. */
export type ShapeCodes = Record<ShapeProblemKind, string>;

/** The problems as Diagnostics located in `doc`; a null field is a warning (it is ignored), the rest errors. */
export function shapeDiagnostics(doc: PolicyDocument, problems: readonly ShapeProblem[], codes: ShapeCodes): Diagnostic[] {
  return problems.map((p) => {
    const severity: Severity = p.kind === 'null_field' ? 'warning' : 'error';
    return { code: codes[p.kind], severity, message: p.message, origin: doc.locate(p.fieldPath), fieldPath: p.fieldPath };
  });
}
