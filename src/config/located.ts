// Owns the located value: one shape for a YAML node or a flag string, with where it came from, so each
// value kind has one converter and every diagnostic names file, line, column and field path (PC-29).

import type { Diagnostic, SourceOrigin } from '../policy/diagnostics.js';

/** Pseudo-file name used in diagnostics about flags; the column is the 1-based argv position. */
export const argvOrigin = '<argv>';

export interface Where {
  origin: SourceOrigin;
  fieldPath: string;
  /** Relative paths resolve here: the config file's directory, or cwd for flags. */
  baseDir: string;
}

export interface LocatedEntry {
  key: string;
  keyWhere: Where;
  value: Located;
}

export type Located =
  | { type: 'scalar'; value: string | number | boolean | null; text: string; where: Where }
  | { type: 'seq'; items: Located[]; where: Where }
  | { type: 'map'; entries: LocatedEntry[]; where: Where };

export class Problems {
  readonly list: Diagnostic[] = [];
  error(where: Where, code: string, message: string): undefined {
    this.list.push({ code, severity: 'error', message, origin: where.origin, fieldPath: where.fieldPath });
    return undefined;
  }
  hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }
}

export const at = (where: Where, fieldPath: string): Where => ({ ...where, fieldPath });

/** Where a schema default is said to come from. */
export const defaultWhere = (key: string, cwd: string): Where => ({ origin: { file: '<default>', line: 1, column: 1 }, fieldPath: key, baseDir: cwd });

export function flagScalar(text: string, where: Where): Located {
  return { type: 'scalar', value: text, text, where };
}

export function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}
