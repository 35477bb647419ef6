#!/usr/bin/env node
// Entry for the compose certificate job: `node dist/src/demo/make-pki.js DIR` writes the demo CA, SVIDs
// for service-a/service-b/intruder, jwks.json and demo.jwt (see pki.ts). Demo material, never production.
import { makeDemoPki } from './pki.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: make-pki DIR\n');
  process.exit(2);
}
makeDemoPki(dir).then(
  (pki) => {
    process.stdout.write(`demo PKI written to ${pki.dir}: ca.crt, ${Object.keys(pki.certs).map((w) => `${w}.crt/.key`).join(', ')}, jwks.json, demo.jwt\n`);
  },
  (err: unknown) => {
    process.stderr.write(`make-pki: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
