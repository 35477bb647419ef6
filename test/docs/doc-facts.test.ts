// The facts the documentation states about the code: every config key a page names is in the config
// schema, and every decision-event field it promises (with the example's values) is in a logged event.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, keyGroups, listenerFields, outboundFields } from '../../src/config/schema.js';
import { jwksJson, makeKey, mint, type TestKey } from '../../src/jwt/testing.js';
import { h2Client, h2Request, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from '../integration/harness.js';
import { repoRoot } from '../helpers/paths.js';
import { documentedFiles } from './doc-blocks.js';

const root = repoRoot();
const pages = documentedFiles(root).map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));

const schemaKeys = new Set<string>([
  ...configSchema.map((k) => k.key),
  ...listenerFields.map((f) => `listeners[].${f.key}`),
  ...outboundFields.map((f) => `outbound[].${f.key}`),
]);
/** A key as docs write it (`limits.maxHeaderBytes`, `listeners[1].upstream`, `cert`) is in the schema. */
function inSchema(key: string): boolean {
  return schemaKeys.has(key.replace(/\[\d*\]/g, '[]'));
}
const FILE_EXTENSIONS = /\.(json|ya?ml|crt|key|pem|jwt|ts|js|mjs|md|svg|txt|proto)$/;
// Dotted names under a config section are config keys; `tls.` is the section name older pages used.
const SECTIONS = new Set([...keyGroups, 'listeners', 'outbound', 'tls']);

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

describe('config keys named in the documentation exist in the schema', () => {
  it('dotted keys under a config section (`limits.x`, `jwks.x`, `listeners[i].x`)', () => {
    const wrong: string[] = [];
    for (const { file, text } of pages) {
      for (const m of text.matchAll(/`([a-z][A-Za-z0-9]*)((?:\[\d*\])?(?:\.[a-z][A-Za-z0-9]*)+)`/g)) {
        const token = `${m[1]}${m[2]}`;
        if (!SECTIONS.has(m[1] ?? '') || FILE_EXTENSIONS.test(token)) continue;
        if (!inSchema(token)) wrong.push(`${file}:${lineOf(text, m.index)} \`${token}\``);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('keys introduced as "config key(s) `a`, `b` and `c`"', () => {
    const wrong: string[] = [];
    let seen = 0;
    for (const { file, text } of pages) {
      for (const m of text.matchAll(/config(?:uration)? keys?\s+((?:`[^`]+`(?:,\s*|\s+and\s+|\s+or\s+)?)+)/g)) {
        for (const t of (m[1] ?? '').matchAll(/`([^`]+)`/g)) {
          seen++;
          const key = (t[1] ?? '').replace(/:$/, '');
          if (!inSchema(key)) wrong.push(`${file}:${lineOf(text, m.index)} \`${key}\``);
        }
      }
    }
    assert.ok(seen > 0, 'the pages name config keys this way (certs/README.md, docs/identity.md)');
    assert.deepEqual(wrong, []);
  });

  it('key tables (| `key` | `--flag` | ...) name real keys with their real flags', () => {
    const wrong: string[] = [];
    for (const { file, text } of pages) {
      for (const m of text.matchAll(/^\| `([A-Za-z][A-Za-z0-9.]*)` \| `--([a-z0-9-]+)` \|/gm)) {
        const spec = configSchema.find((k) => k.key === m[1]);
        if (!spec || spec.flag !== m[2]) wrong.push(`${file}:${lineOf(text, m.index)} ${m[1]} --${m[2]}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('YAML config samples in the pages use only schema keys', () => {
    const wrong: string[] = [];
    for (const { file, text } of pages) {
      for (const m of text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
        let doc: unknown;
        try { doc = parseYaml(m[1] ?? ''); } catch { continue; }
        if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !('listeners' in doc || 'policies' in doc) || 'apiVersion' in doc) continue;
        for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
          const keys = keyGroups.includes(k) && v && typeof v === 'object' ? Object.keys(v).map((s) => `${k}.${s}`)
            : (k === 'listeners' || k === 'outbound') && Array.isArray(v) ? v.flatMap((e) => (e && typeof e === 'object' ? Object.keys(e).map((s) => `${k}[].${s}`) : []))
              : [k];
          for (const key of keys) if (!inSchema(key)) wrong.push(`${file}:${lineOf(text, m.index)} ${key}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
});

/** Every leaf path of a JSON value (objects only; arrays and null are leaves). */
function paths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => paths(v, prefix ? `${prefix}.${k}` : k));
}
function at(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
}

describe('decision-event fields the documentation promises are in a logged event', () => {
  const observability = readFileSync(join(root, 'docs/observability.md'), 'utf8');
  const example = JSON.parse(/^```json\n(\{"v":1,[^\n]*\})\n```/m.exec(observability)?.[1] ?? 'null') as Record<string, unknown> | null;
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let key: TestKey;
  let logged: Record<string, unknown>;

  before(async () => {
    key = await makeKey('ES256', 'k1');
    upstream = await startH1Upstream();
    // The documented example: audit mode, an HTTP/2 POST with a valid JWT that a DENY rule matches,
    // forwarded as a would-deny and answered by the workload.
    const policy = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: '${jwksJson(key)}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {methods: ["POST"]}}]
`;
    proxy = await startProxy({ policy, upstream: upstream.url, mode: 'audit' });
    const token = await mint(key, { iss: 'https://issuer.example', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 });
    const session = h2Client(proxy, proxy.svids.frontend);
    const r = await h2Request(session, { ':method': 'POST', ':path': '/orders/42', authorization: `Bearer ${token}` }, '{}');
    session.close();
    assert.equal(r.status, 200);
    const ev = await proxy.event((e) => e.request.path === '/orders/42');
    assert.ok(ev, 'the request was logged');
    logged = ev as unknown as Record<string, unknown>;
  });
  after(async () => { await proxy?.stop(); await upstream?.close(); });

  it('docs/observability.md has the example event', () => {
    assert.ok(example, 'a ```json block with {"v":1,...}');
  });

  it('every field of the documented example is in the logged event', () => {
    const missing = paths(example).filter((p) => at(logged, p) === undefined);
    assert.deepEqual(missing, []);
  });

  it('the example\'s enumerated values are what the same request logs', () => {
    for (const p of ['v', 'mode', 'verdict', 'would_deny', 'dialect', 'reason', 'request.protocol', 'request.method', 'status', 'upstream.outcome', 'upstream.status', 'jwt.sub']) {
      assert.deepEqual(at(logged, p), at(example, p), p);
    }
  });

  it('every field in the field table is a top-level field of the event', () => {
    const section = observability.slice(observability.indexOf('| Field | Meaning |'), observability.indexOf('## Metrics'));
    const fields = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1] ?? '');
    assert.ok(fields.length > 10);
    assert.deepEqual(fields.filter((f) => !(f in logged)), []);
  });
});
