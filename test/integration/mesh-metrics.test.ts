// Integration: the mesh-style request metrics (Istio's requests_total / request_duration shape, Linkerd's
// authz allow/deny) count real HTTP/1.1 and gRPC traffic; the example Grafana dashboard queries only them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { echoClient, startEchoUpstream, unary, type EchoUpstream } from './grpc-fixture.js';
import { repoRoot } from '../helpers/paths.js';

interface Sample { name: string; labels: Record<string, string>; value: number }

function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length
    && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('mesh-style request metrics', () => {
  let h1: RecordingUpstream;
  let echo: EchoUpstream;
  let web: ProxyUnderTest;
  let rpc: ProxyUnderTest;
  let audit: ProxyUnderTest;
  const scrapes: Sample[][] = [];

  before(async () => {
    h1 = await startH1Upstream();
    echo = await startEchoUpstream();
    web = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: h1.url });
    rpc = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: echo.url });
    audit = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: h1.url, mode: 'audit' });
  });
  after(async () => { await web.stop(); await rpc.stop(); await audit.stop(); await h1.close(); await echo.close(); });

  it('HTTP/1.1: requests and duration by response code, authz allow and deny by reason', async () => {
    const frontend = mtlsAgent(web, web.svids.frontend);
    const other = mtlsAgent(web, web.svids.other);
    for (let i = 0; i < 3; i++) assert.equal((await getText(`${web.origin}/echo`, frontend)).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await getText(`${web.origin}/echo`, other)).status, 403);
    assert.equal((await getText(`${web.origin}/admin`, frontend)).status, 403);
    await frontend.close();
    await other.close();
    await web.events(6);
    const m = parseMetrics(await web.metrics());
    scrapes.push(m);
    const req = (code: string) => ({ listener: 'inbound', request_protocol: 'http1', response_code: code, grpc_response_status: '' });
    assert.equal(value(m, 'portcullis_http_requests_total', req('200')), 3);
    assert.equal(value(m, 'portcullis_http_requests_total', req('403')), 3);
    assert.equal(value(m, 'portcullis_request_duration_milliseconds_count', req('200')), 3);
    assert.ok((value(m, 'portcullis_request_duration_milliseconds_sum', req('200')) ?? 0) > 0);
    assert.equal(value(m, 'portcullis_request_duration_milliseconds_bucket', { ...req('200'), le: '+Inf' }), 3);
    assert.equal(value(m, 'portcullis_inbound_http_authz_allow_total', { listener: 'inbound', mode: 'enforce', reason: 'allow_policy_matched' }), 3);
    assert.equal(value(m, 'portcullis_inbound_http_authz_deny_total', { listener: 'inbound', mode: 'enforce', reason: 'no_allow_policy_matched' }), 2);
    assert.equal(value(m, 'portcullis_inbound_http_authz_deny_total', { listener: 'inbound', mode: 'enforce', reason: 'deny_policy_matched' }), 1);
    // The existing portcullis_* metrics are kept.
    assert.equal(value(m, 'portcullis_requests_total', { verdict: 'allow', mode: 'enforce', reason: 'allow_policy_matched', listener: 'inbound' }), 3);
  });

  it('gRPC: the workload\'s grpc-status (0, 9) and the sidecar\'s (7) label the requests; the decision event carries it', async () => {
    const ok = await unary(echoClient(rpc.port, rpc.caPem, rpc.svids.frontend), { message: 'hi' });
    const failed = await unary(echoClient(rpc.port, rpc.caPem, rpc.svids.frontend), { message: 'fail' });
    const denied = await unary(echoClient(rpc.port, rpc.caPem, rpc.svids.other), { message: 'hi' });
    assert.equal(ok.err, null);
    assert.equal(failed.err?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(denied.err?.code, grpc.status.PERMISSION_DENIED);
    const events = await rpc.events(3);
    assert.deepEqual(events.map((e) => e.grpc_status).sort(), [0, 7, 9]);
    const m = parseMetrics(await rpc.metrics());
    scrapes.push(m);
    for (const status of ['0', '9', '7']) {
      assert.equal(value(m, 'portcullis_http_requests_total', { listener: 'inbound', request_protocol: 'grpc', response_code: '200', grpc_response_status: status }), 1, `grpc-status ${status}`);
    }
  });

  it('audit mode: a would-deny is forwarded (200) and counted as an authz deny in mode audit', async () => {
    const other = mtlsAgent(audit, audit.svids.other);
    assert.equal((await getText(`${audit.origin}/echo`, other)).status, 200);
    await other.close();
    await audit.events(1);
    const m = parseMetrics(await audit.metrics());
    scrapes.push(m);
    assert.equal(value(m, 'portcullis_http_requests_total', { listener: 'inbound', request_protocol: 'http1', response_code: '200', grpc_response_status: '' }), 1);
    assert.equal(value(m, 'portcullis_inbound_http_authz_deny_total', { listener: 'inbound', mode: 'audit', reason: 'no_allow_policy_matched' }), 1);
    assert.equal(value(m, 'portcullis_would_deny_total', { reason: 'no_allow_policy_matched' }), 1);
  });

  it('examples/grafana/portcullis-dashboard.json (valid JSON) and the PromQL in docs/observability.md use only metrics and labels that exist', () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot(), 'examples/grafana/portcullis-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    assert.equal(scrapes.length, 3, 'scrapes of the traffic tests above');
    const all = scrapes.flat();
    const names = new Set(all.map((s) => s.name));
    const labelsOf = (metric: string): Set<string> => new Set(all.filter((s) => s.name === metric || s.name.startsWith(`${metric}_`)).flatMap((s) => Object.keys(s.labels)));
    const problems: string[] = [];
    let queries = 0;
    // The example PromQL of docs/observability.md is held to the same rule.
    const doc = readFileSync(join(repoRoot(), 'docs/observability.md'), 'utf8');
    const docQueries = [...doc.matchAll(/`([^`]*\(([^`]*)portcullis_[^`]*)`/g)].map((m) => ({ expr: m[1] ?? '' }));
    assert.ok(docQueries.length >= 7, 'docs/observability.md shows example PromQL');
    for (const panel of [...dashboard.panels, { title: 'docs/observability.md', targets: docQueries }]) {
      for (const { expr } of panel.targets) {
        queries++;
        const promql = expr.replace(/\$__rate_interval/g, '5m').replace(/\$\w+/g, 'x');
        const metrics = [...promql.matchAll(/\b(portcullis_[a-z0-9_]+)(?:\{([^}]*)\})?/g)].map((m) => ({ metric: m[1] ?? '', selector: m[2] ?? '' }));
        if (metrics.length === 0) problems.push(`${panel.title}: no portcullis metric in ${expr}`);
        const labelNames = (list: string): string[] => list.split(',').map((p) => p.trim().split(/[=!~]/)[0]?.trim() ?? '').filter(Boolean);
        const union = new Set(['job', 'instance', 'le']);
        for (const { metric, selector } of metrics) {
          if (!names.has(metric)) { problems.push(`${panel.title}: ${metric} is not exported`); continue; }
          const known = new Set([...labelsOf(metric), 'job', 'instance', 'le']);
          for (const l of known) union.add(l);
          for (const label of labelNames(selector)) if (!known.has(label)) problems.push(`${panel.title}: ${metric} has no label ${label}`);
        }
        for (const m of promql.matchAll(/\bby \(([^)]*)\)/g)) {
          for (const label of labelNames(m[1] ?? '')) if (!union.has(label)) problems.push(`${panel.title}: no metric of ${expr} has label ${label}`);
        }
      }
    }
    assert.ok(queries >= 10, 'the dashboard has its panels');
    assert.deepEqual(problems, []);
  });
});
