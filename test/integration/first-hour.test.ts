// The first hour of a new user, as processes: one startup error is one line naming the key, file and
// cause, every unusable configuration exits 2, operational log lines carry a time and each policy warning.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { sharedTestPki, writePkiFiles } from '../helpers/pki.js';
import { jwksJson, makeKey, mint } from '../../src/jwt/testing.js';

const root = repoRoot();
const main = join(root, 'dist/src/main.js');

function run(args: string[], cwd = root): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [main, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}
function lines(text: string): string[] { return text.split('\n').filter((l) => l.trim() !== ''); }

function workdir(): { dir: string; files: ReturnType<typeof writePkiFiles>; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-firsthour-'));
  const { pki, svids } = sharedTestPki();
  const files = writePkiFiles(join(dir, 'pki'), pki, { server: svids.server });
  return { dir, files, done: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('portcullis run: startup errors', () => {
  it('a missing config file is one line, no MISSING_KEY noise, exit 2', () => {
    const r = run(['run', '--config', '/nonexistent/portcullis.yaml']);
    assert.equal(r.code, 2);
    assert.deepEqual(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /PRT_CONFIG_FILE_UNREADABLE cannot read config file \/nonexistent\/portcullis\.yaml: ENOENT/);
  });

  it('a missing certificate names the config key, the file it came from and the cause, exit 2', () => {
    const w = workdir();
    try {
      const policy = join(w.dir, 'policy.yaml');
      writeFileSync(policy, 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\nspec: {}\n');
      const config = join(w.dir, 'portcullis.yaml');
      const server = w.files.files.server as { cert: string; key: string };
      writeFileSync(config, `listeners: [{listen: "127.0.0.1:0", upstream: "http://127.0.0.1:1"}]\nadmin: 127.0.0.1:0\npolicies: [policy.yaml]\ncert: missing/svid.pem\nkey: ${server.key}\ntrustBundle: ${w.files.bundle}\nnamespace: shop\n`);
      const r = run(['run', '--config', config]);
      assert.equal(r.code, 2);
      const errs = lines(r.stderr).filter((l) => !l.startsWith('{'));
      assert.equal(errs.length, 1, r.stderr);
      assert.match(errs[0] ?? '', new RegExp(`cert ${join(w.dir, 'missing/svid.pem').replace(/[/.]/g, '\\$&')} \\(from ${config.replace(/[/.]/g, '\\$&')}\\): no such file or directory`));
    } finally { w.done(); }
  });

  it('a missing policy path exits 2 like every other unusable configuration', () => {
    const w = workdir();
    try {
      const server = w.files.files.server as { cert: string; key: string };
      const r = run(['run', '--listener', 'listen=127.0.0.1:0,upstream=http://127.0.0.1:1', '--admin', '127.0.0.1:0', '--policies', join(w.dir, 'nope'),
        '--cert', server.cert, '--key', server.key, '--trust-bundle', w.files.bundle, '--namespace', 'shop']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /nope/);
    } finally { w.done(); }
  });

  it('an unknown flag gets a did-you-mean (run, check, explain)', () => {
    assert.match(run(['run', '--trust-domian', 'x']).stderr, /unknown flag '--trust-domian' \(did you mean '--trust-domain'\?\)/);
    assert.match(run(['check', '--namespce', 'demo']).stderr, /Unknown option '--namespce' \(did you mean '--namespace'\?\)/);
    assert.match(run(['explain', '--jwk', 'a=b']).stderr, /\(did you mean '--jwks'\?\)/);
  });

  it('operational log lines carry an ISO time; each policy warning is printed with file, line and code', async () => {
    const w = workdir();
    try {
      const server = w.files.files.server as { cert: string; key: string };
      // No namespace in metadata: a warning (kubectl apply without -n).
      const policy = join(w.dir, 'policy.yaml');
      writeFileSync(policy, 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec: {}\n');
      const child = spawn(process.execPath, [main, 'run', '--listener', 'listen=127.0.0.1:0,upstream=http://127.0.0.1:1', '--admin', '127.0.0.1:0', '--policies', policy,
        '--cert', server.cert, '--key', server.key, '--trust-bundle', w.files.bundle, '--namespace', 'shop', '--decision-log', 'off'], { cwd: root });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      for (let i = 0; i < 150 && !stderr.includes('inbound listener ready'); i++) await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      const events = lines(stderr).map((l) => JSON.parse(l) as { time?: string; level: string; msg: string; code?: string; file?: string; line?: number });
      assert.ok(events.length >= 3, stderr);
      for (const e of events) assert.match(e.time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(e));
      const loaded = events.find((e) => e.msg === 'policy loaded') as { warnings?: number } | undefined;
      const warnings = events.filter((e) => e.level === 'warn' && e.file === policy);
      assert.ok(loaded && (loaded.warnings ?? 0) >= 1);
      assert.equal(warnings.length, loaded.warnings);
      assert.match(warnings[0]?.msg ?? '', new RegExp(`^${policy.replace(/[/.]/g, '\\$&')}:\\d+:\\d+ warning PRT_`));
    } finally { w.done(); }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('portcullis run: logLevel', () => {
  it('--log-level warn keeps warnings and drops info lines until the sidecar is ready', async () => {
    const w = workdir();
    try {
      const server = w.files.files.server as { cert: string; key: string };
      const policy = join(w.dir, 'policy.yaml');
      writeFileSync(policy, 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec: {}\n');
      const admin = await freePort();
      const child = spawn(process.execPath, [main, 'run', '--listener', 'listen=127.0.0.1:0,upstream=http://127.0.0.1:1', '--admin', `127.0.0.1:${admin}`, '--policies', policy,
        '--cert', server.cert, '--key', server.key, '--trust-bundle', w.files.bundle, '--namespace', 'shop', '--decision-log', 'off', '--log-level', 'warn'], { cwd: root });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      let ready = false;
      for (let i = 0; i < 150 && !ready; i++) {
        ready = await fetch(`http://127.0.0.1:${admin}/ready`).then((r) => r.status === 200, () => false);
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      assert.ok(ready, stderr);
      const events = lines(stderr).map((l) => JSON.parse(l) as { level: string; msg: string; file?: string });
      assert.ok(events.some((e) => e.level === 'warn' && e.file === policy), stderr);
      assert.deepEqual(events.filter((e) => e.level === 'info').map((e) => e.msg), []);
    } finally { w.done(); }
  });
});

describe('portcullis check: strict input', () => {
  it('a misspelt request field is named with its position and a did-you-mean, exit 2', () => {
    const w = workdir();
    try {
      const req = join(w.dir, 'req.json');
      writeFileSync(req, '{"pth":"/x"}');
      const r = run(['check', '--policies', 'examples/istio/policies', '--request', req]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.equal(lines(r.stderr)[0], `${req}:1:2 error PRT_CHECK_UNKNOWN_FIELD unknown request field 'pth' (did you mean 'path'?) (pth)`);
      writeFileSync(req, '{\n  "method": "GET",\n  "path": 5,\n  "port": "80"\n}\n');
      const typed = run(['check', '--policies', 'examples/istio/policies', '--request', req]);
      assert.equal(typed.code, 2);
      assert.deepEqual(lines(typed.stderr), [
        `${req}:3:11 error PRT_CHECK_FIELD_TYPE 'path' must be a string (path)`,
        `${req}:4:11 error PRT_CHECK_FIELD_TYPE 'port' must be a port number (1-65535) (port)`,
      ]);
    } finally { w.done(); }
  });

  it('a JWKS file that is not JSON is an error naming the file, exit 2 (not a 401 with exit 0)', () => {
    const w = workdir();
    try {
      const jwks = join(w.dir, 'jwks.json');
      writeFileSync(jwks, 'this is not json');
      const r = run(['check', '--policies', 'examples/istio/policies', '--request', 'examples/istio/requests/a-get-orders.json', '--jwks', `file:///etc/portcullis/certs/jwks.json=${jwks}`]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^${jwks.replace(/[/.]/g, '\\$&')}:1:1 error PRT_CHECK_JWKS_FILE the JWKS file is not JSON`));
    } finally { w.done(); }
  });

  it('explain --help lists every flag it accepts, --jwks and --now included', () => {
    const r = run(['explain', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--policies', '--request', '--jwks', '--now', '--namespace']) assert.ok(r.stdout.includes(flag), flag);
  });

  it('check --help names every field a check prints, the deciding tier included', () => {
    const help = run(['check', '--help']);
    assert.equal(help.code, 0);
    const r = run(['check', '--policies', 'examples/calico/policies', '--request', 'examples/calico/requests/prometheus-metrics.json',
      '--namespace', 'demo', '--labels', 'app=service-b', '--service-account', 'service-b', '--port-names', 'http=8080,metrics=9090']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out.tier, 'default');
    for (const field of Object.keys(out)) assert.match(help.stdout, new RegExp(`\\b${field}\\b`), field);
    assert.match(help.stdout, /tier names the deciding dialect's tier: a Calico tier/);
  });
});

describe('portcullis check honours the request flags run has', () => {
  const policy = (jwks: string) => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  jwtRules:
  - issuer: https://issuer.test
    jwks: '${jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open, namespace: demo}
spec:
  action: ALLOW
  rules: [{}]
`;

  it('--max-header-count, --max-jwt-bytes and --jwt-clock-skew change the decision as they do in run', async () => {
    const w = workdir();
    try {
      const key = await makeKey('ES256', 'k1');
      writeFileSync(join(w.dir, 'p.yaml'), policy(jwksJson(key)));
      const now = 1_800_000_000;
      // Expired 30 s ago: inside the default 60 s skew. 13 header lines with the Host line.
      const token = await mint(key, { iss: 'https://issuer.test', sub: 'u', exp: now - 30, pad: 'x'.repeat(300) });
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      for (let i = 0; i < 11; i++) headers[`x-h${i}`] = 'v';
      const req = join(w.dir, 'req.json');
      writeFileSync(req, JSON.stringify({ method: 'GET', path: '/', host: 'web', headers, peer: null, port: 8080, protocol: 'http' }));
      const check = (flags: string[]) => {
        const r = run(['check', '--namespace', 'demo', '--policies', join(w.dir, 'p.yaml'), '--request', req, '--now', String(now * 1000), ...flags]);
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout) as { verdict: string; status: number; reason: string };
      };
      assert.deepEqual([check([]).verdict, check([]).status], ['allow', 200]);
      const tooMany = check(['--max-header-count', '12']);
      assert.deepEqual([tooMany.verdict, tooMany.status], ['bad_request', 431]);
      const long = check(['--max-jwt-bytes', '256']);
      assert.deepEqual([long.verdict, long.status], ['unauthenticated', 401]);
      const strict = check(['--jwt-clock-skew', '0s']);
      assert.deepEqual([strict.verdict, strict.status, strict.reason], ['unauthenticated', 401, 'jwt_expired']);
    } finally { w.done(); }
  });
});
