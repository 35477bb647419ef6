// Integration: hot reload under traffic. The policy file is rewritten while requests flow; every request is
// judged by exactly one complete snapshot (its decision event names the revision, and the status matches it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

const POLICY_B = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-v2-only, namespace: foo}
spec:
  action: ALLOW
  rules:
  - to: [{operation: {paths: ["/v2/*"]}}]
`;

describe('policy hot reload under traffic', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('never judges a request by a mixed or half-written policy set', async () => {
    const agent = mtlsAgent(proxy, proxy.svids.frontend);
    const first = await getText(`${proxy.origin}/public/a`, agent);
    assert.equal(first.status, 200);
    const revA = (await proxy.events(1)).at(-1)?.policy_revision;
    let stop = false;
    const statuses: number[] = [];
    const hammer = async (): Promise<void> => {
      for (let i = 0; i < 2000 && !stop; i++) statuses.push((await getText(`${proxy.origin}/public/a`, agent)).status);
    };
    const workers = [hammer(), hammer(), hammer(), hammer()];
    // Alternate plain rewrites (truncate + write) and atomic renames, several times.
    for (let round = 0; round < 6; round++) {
      const text = round % 2 === 0 ? POLICY_B : ALLOW_FRONTEND_POLICY;
      if (round % 3 === 2) {
        const tmp = join(proxy.dir, `.policy-${round}.tmp`);
        writeFileSync(tmp, text);
        renameSync(tmp, proxy.policyFile);
      } else {
        writeFileSync(proxy.policyFile, text);
      }
      await new Promise((r) => setTimeout(r, 400));
    }
    // End on B and wait until it is in force.
    writeFileSync(proxy.policyFile, POLICY_B);
    let last = 0;
    for (let i = 0; i < 100; i++) {
      last = (await getText(`${proxy.origin}/public/a`, agent)).status;
      if (last === 403) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    stop = true;
    await Promise.all(workers);
    assert.equal(last, 403, JSON.stringify(proxy.app.policyStore?.status().lastReload));
    assert.ok(statuses.length > 20, `traffic flowed during the rewrites (${statuses.length} requests)`);
    const events = await proxy.events(statuses.length + 2);
    const revisions = new Set(events.map((e) => e.policy_revision));
    assert.ok(revisions.size >= 2 && revisions.size <= 2, `exactly two complete revisions were in force: ${[...revisions].join(',')}`);
    for (const e of events) {
      if (e.request.path !== '/public/a') continue;
      const expected = e.policy_revision === revA ? 200 : 403;
      assert.equal(e.status, expected, `revision ${e.policy_revision} answered ${e.status}`);
    }
    for (const s of statuses) assert.ok(s === 200 || s === 403, `unexpected status ${s}`);
    const metrics = await proxy.metrics();
    assert.match(metrics, /portcullis_requests_total\{[^}]*verdict="allow"/);
    assert.match(metrics, /portcullis_requests_total\{[^}]*verdict="deny"/);
  });
});
