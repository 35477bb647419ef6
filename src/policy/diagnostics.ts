// Owns the Diagnostic shape every user-input problem is reported in (policies, config, requests).
// Diagnostics are collected and returned, never thrown; codes are stable and greppable (PRT_*).

export type Severity = 'error' | 'warning' | 'info';

/** Where a problem sits in what the user wrote. Lines and columns are 1-based. */
export interface SourceOrigin {
  file: string;
  line: number;
  column: number;
}

export interface Diagnostic {
  /** Stable code, e.g. PRT_ISTIO_UNKNOWN_FIELD. Never reworded once shipped. */
  code: string;
  severity: Severity;
  message: string;
  origin: SourceOrigin;
  /** Dotted/indexed path inside the document, e.g. `spec.rules[0].from[1].source.principals`. */
  fieldPath: string;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** `file:line:col severity code message (fieldPath)` as `portcullis validate` prints it. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.origin.file}:${d.origin.line}:${d.origin.column}`;
  const path = d.fieldPath ? ` (${d.fieldPath})` : '';
  return `${where} ${d.severity} ${d.code} ${d.message}${path}`;
}
