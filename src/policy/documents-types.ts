// Owns the PolicyDocument shape: one Kubernetes-style YAML document with the positions of its fields,
// so validation can point at file, line and column exactly as the user wrote them.

import type { SourceOrigin } from './diagnostics.js';

/** One input file handed to the pure core: the caller (CLI, config watcher) reads the bytes. */
export interface PolicySource {
  file: string;
  text: string;
}

/** A plain-JSON value as parsed from YAML (anchors resolved). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface PolicyDocument {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string | undefined;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    creationTimestamp: string | undefined;
  };
  /** The whole document as parsed (including spec, status, metadata). */
  body: { [key: string]: JsonValue };
  /** Position of the document's first line. */
  origin: SourceOrigin;
  /**
   * Position of any field by its field path (`spec.rules[0].to[0].operation.paths[1]`);
   * falls back to the nearest ancestor that has a position, then to `origin`.
   */
  locate(fieldPath: string): SourceOrigin;
}
