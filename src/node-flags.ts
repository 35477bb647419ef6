// Owns the Node.js flags Portcullis is launched with (bin shebang, Dockerfile, demo, load tests).
// A small V8 young generation keeps a sidecar's RSS low; it must be given at start, not set at run time.

/** Young-generation semi-space in MiB: 2 keeps RSS near the idle baseline at 1,000 requests/s. */
export const SEMI_SPACE_MIB = 2;

export const portcullisNodeFlags: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MIB}`];
