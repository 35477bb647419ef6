// Owns the operational log on stderr: one JSON line per event, each with an ISO 8601 `time`, `level` and
// `msg` first (the decision log is separate: observe/decision-log.ts). Policy diagnostics get one line each.
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics.js';

export interface OpLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One operational log line (newline-terminated). */
export function opLine(level: 'info' | 'warn' | 'error', msg: string, obj: object = {}): string {
  return JSON.stringify({ time: new Date().toISOString(), level, msg, ...obj }) + '\n';
}

export const stderrOpLogger: OpLogger = {
  info: (obj, msg) => process.stderr.write(opLine('info', msg, obj)),
  warn: (obj, msg) => process.stderr.write(opLine('warn', msg, obj)),
  error: (obj, msg) => process.stderr.write(opLine('error', msg, obj)),
};

const severity = { debug: 0, info: 1, warn: 2, error: 3 } as const;
export type OpLogLevel = keyof typeof severity;

/** The operational logger for the `logLevel` setting: lines below it are dropped (`debug` shows everything). */
export function opLoggerAtLevel(level: OpLogLevel, write: (line: string) => void = (line) => { process.stderr.write(line); }): OpLogger {
  const min = severity[level];
  const drop = (): void => {};
  return {
    info: min <= severity.info ? (obj, msg) => write(opLine('info', msg, obj)) : drop,
    warn: min <= severity.warn ? (obj, msg) => write(opLine('warn', msg, obj)) : drop,
    error: (obj, msg) => write(opLine('error', msg, obj)),
  };
}

/** Each diagnostic as its own line: `msg` is what `portcullis validate` prints for it. */
export function logDiagnostics(logger: OpLogger | undefined, diagnostics: readonly Diagnostic[], event: string): void {
  for (const d of diagnostics) {
    const fields = { event, code: d.code, file: d.origin.file, line: d.origin.line, column: d.origin.column, field: d.fieldPath };
    if (d.severity === 'error') logger?.error(fields, formatDiagnostic(d));
    else logger?.warn(fields, formatDiagnostic(d));
  }
}
