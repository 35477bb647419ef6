#!/usr/bin/env node
// Entry of `npm start`: runs the whole Portcullis story on loopback (see story.ts) and prints the table.
// `--keep` leaves everything running and prints curl examples; Ctrl-C stops it. Exit 0 only if every call matched.
import { readFileSync } from 'node:fs';
import { renderTable, runDemo, type DemoResult } from './story.js';

const keep = process.argv.includes('--keep');
let result: DemoResult | undefined;
let exiting = false;

async function shutdown(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    await result?.stop().catch(() => undefined);
  }
  process.exit(code);
}
process.on('SIGINT', () => { void shutdown(keep ? 0 : 130); });
process.on('SIGTERM', () => { void shutdown(143); });

try {
  result = await runDemo();
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await shutdown(1);
}
if (result) {
  process.stdout.write(renderTable(result.rows));
  if (result.auditLine) process.stdout.write(`\nwould-deny line from the audit-only sidecar's decision log:\n${result.auditLine}\n`);
  process.stdout.write(`\n${result.ok ? 'All calls behaved as expected.' : 'Some calls did NOT behave as expected (FAIL above).'} Logs: ${result.dir}/logs/\n`);
  if (keep) {
    const e = result.endpoints;
    const token = readFileSync(result.pki.tokenFile, 'utf8').trim();
    process.stdout.write([
      '',
      'Everything is still running (--keep). Try, as service a\'s app:',
      `  curl -i ${e['service-a outbound (HTTP to b)']}/api/orders                       # 200`,
      `  curl -i ${e['service-a outbound (HTTP to b)']}/admin/config                     # 403`,
      `  curl -i -X POST ${e['service-a outbound (HTTP to b)']}/api/orders -d '{}'         # 403 (no JWT)`,
      `  curl -i -X POST -H "authorization: Bearer $(cat ${result.pki.tokenFile})" ${e['service-a outbound (HTTP to b)']}/api/orders -d '{}'   # 201`,
      'as the intruder:',
      `  curl -i ${e['intruder outbound (HTTP to b)']}/api/orders                       # 403`,
      `  curl -i ${e['intruder outbound (HTTP to audit-only b)']}/api/orders                       # 200, logged would_deny`,
      'straight at service b\'s sidecar with the intruder\'s certificate:',
      `  curl -i --cacert ${result.pki.bundle} --cert ${result.pki.certs.intruder.cert} --key ${result.pki.certs.intruder.key} ${e['service-b inbound (mTLS)']}/api/orders   # 403`,
      'admin:',
      `  curl ${e['service-b admin']}/metrics ; curl ${e['service-b admin']}/policy`,
      `decision logs: tail -f ${result.dir}/logs/*.decisions.ndjson`,
      `(token length ${token.length}; Ctrl-C stops everything)`,
      '',
    ].join('\n'));
    setInterval(() => undefined, 1 << 30);
  } else {
    await shutdown(result.ok ? 0 : 1);
  }
}
