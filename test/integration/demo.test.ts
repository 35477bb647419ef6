// The `npm start` story end to end: real Portcullis processes, real mTLS, JWT and gRPC; every scripted
// call must come out as the README says, and every process must be gone afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo, renderTable } from '../../src/demo/story.js';

test('demo: scripted calls give the documented results and the audit twin logs a would-deny', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-demo-'));
  const output: string[] = [];
  const result = await runDemo({ dir, timeoutMs: 60_000, write: (t) => output.push(t) });
  try {
    const byShows = Object.fromEntries(result.rows.map((r) => [r.shows, r]));
    assert.equal(byShows['allowed']?.got, '200');
    assert.match(byShows['allowed']?.log ?? '', /^allow allow_policy_matched demo\/service-b-allow/);
    assert.equal(byShows['denied by path']?.got, '403');
    assert.match(byShows['denied by path']?.log ?? '', /deny_policy_matched demo\/service-b-deny-admin/);
    assert.equal(byShows['denied by identity']?.got, '403');
    assert.equal(byShows['denied without the required JWT']?.got, '403');
    assert.equal(byShows['invalid JWT refused']?.got, '401');
    assert.equal(byShows['allowed with the JWT']?.got, '201');
    assert.equal(byShows['gRPC allowed']?.got, 'grpc 0 OK');
    assert.equal(byShows['gRPC denied']?.got, 'grpc 7 PERMISSION_DENIED');
    assert.equal(byShows['same denied call, audit mode']?.got, '200');
    assert.match(byShows['same denied call, audit mode']?.log ?? '', /would_deny/);
    assert.equal(byShows['outbound: wrong server identity']?.got, '503');
    assert.match(byShows['outbound: wrong server identity']?.log ?? '', /server_identity_mismatch/);
    const audit = JSON.parse(result.auditLine ?? '{}') as { mode?: string; would_deny?: boolean; peer?: { spiffe_id?: string } };
    assert.equal(audit.mode, 'audit');
    assert.equal(audit.would_deny, true);
    assert.equal(audit.peer?.spiffe_id, 'spiffe://cluster.local/ns/demo/sa/intruder');
    assert.ok(result.ok, renderTable(result.rows));
  } finally {
    await result.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const pids = output.join('').match(/pid (\d+)/g)?.map((m) => Number(m.slice(4))) ?? [];
  assert.equal(pids.length, 4, 'four Portcullis processes were started');
  for (const pid of pids) {
    assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} is gone after stop()`);
  }
});
