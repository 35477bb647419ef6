// Owns the load test's environment on loopback: PKI (via `portcullis certs`), a JWT key, policies, the
// upstream process, nginx (mTLS, from loadtest/nginx.conf.template) and one Portcullis process per setup.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { fetch } from 'undici';
import { childPids } from './procfs.mjs';

const here = fileURLToPath(new URL('..', import.meta.url));
export const TRUST_DOMAIN = 'cluster.local';
export const CALLER_ID = `spiffe://${TRUST_DOMAIN}/ns/loadtest/sa/caller`;
export const WORKLOAD_ID = `spiffe://${TRUST_DOMAIN}/ns/loadtest/sa/workload`;
export const ISSUER = 'https://issuer.loadtest.portcullis';

/** What each setup is; `kind` picks how it starts. Portcullis setups write a decision log, except the one that measures what it costs. */
export const SETUP_CATALOG = {
  direct: { kind: 'direct', label: 'direct (no proxy, plaintext)' },
  nginx: { kind: 'nginx', label: 'nginx mTLS' },
  bare: { kind: 'bare', label: 'bare Node mTLS proxy (reference, not the product): node:https + undici / node:http2, one path rule, no identity, no log' },
  'bare-bindfix': { kind: 'bare', bindFix: true, label: "as bare, with Portcullis' replacement of Node 20's AsyncResource.prototype.bind (src/proxy/async-resource-bind.ts) for its HTTP/2 client leg" },
  'pc-10': { kind: 'portcullis', rules: 10, mode: 'enforce', label: 'Portcullis mTLS, 10 rules' },
  'pc-10-baseline': { kind: 'portcullis', rules: 10, mode: 'enforce', baseline: true, label: 'Portcullis mTLS, 10 rules, built from --baseline-dist (before/after in one run)' },
  'pc-10-c2': { kind: 'portcullis', rules: 10, mode: 'enforce', concurrency: 2, label: 'Portcullis mTLS, 10 rules, concurrency 2 (primary + 2 workers; CPU and RSS summed)' },
  'pc-10-nolog': { kind: 'portcullis', rules: 10, mode: 'enforce', decisionLog: 'off', label: 'as pc-10 with decisionLog off: what the decision log costs' },
  'pc-1000': { kind: 'portcullis', rules: 1000, mode: 'enforce', label: 'Portcullis mTLS, 1,000 rules' },
  'pc-jwt': { kind: 'portcullis', rules: 10, mode: 'enforce', jwt: true, label: 'Portcullis mTLS, 10 rules + JWT (cached key)' },
  'pc-capture': { kind: 'portcullis', rules: 10, mode: 'enforce', jwt: true, typicalHeaders: true, capture: 'replayable', label: 'Portcullis mTLS, 10 rules + JWT, 6 typical request headers, decisionLogCapture replayable (the default)' },
  'pc-capture-minimal': { kind: 'portcullis', rules: 10, mode: 'enforce', jwt: true, typicalHeaders: true, capture: 'minimal', label: 'as pc-capture with decisionLogCapture minimal (the decision only)' },
  'pc-audit': { kind: 'portcullis', rules: 10, mode: 'audit', auditDeny: true, label: 'Portcullis audit mode (every request a logged would-deny)' },
  'pc-mesh': { kind: 'mesh', rules: 10, mode: 'enforce', label: 'Portcullis outbound + inbound (two sidecars)' },
};

/** What a browser or service client typically adds: what a replayable decision event copies per request. */
const typicalHeaders = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  accept: 'application/json, text/plain, */*',
  'accept-language': 'en-US,en;q=0.9',
  'x-request-id': '4bf92f35-77b3-4da6-a3ce-929d0e0e4736',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  cookie: 'session=6a1f0c9e2b7d4e11; theme=dark',
};

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A process that exited while being waited for: waiting on is pointless. */
const exited = (message) => Object.assign(new Error(message), { fatal: true });

async function waitFor(check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err.fatal) throw err;
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms${lastError ? `: ${lastError.message}` : ''}`);
}

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** nginx from Debian: found on PATH or in /usr/sbin, else installed with apt-get (root only). */
export function ensureNginx(log) {
  const find = () => ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p));
  let bin = find();
  if (bin) return bin;
  log('nginx not found: installing it with apt-get (nginx-light, else nginx)');
  try {
    execFileSync('sh', ['-c', 'apt-get update -qq && (apt-get install -y -qq nginx-light || apt-get install -y -qq nginx)'], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    log(`apt-get failed: ${err.message}`);
  }
  bin = find();
  return bin ?? null;
}

function nginxVersion(bin) {
  try {
    const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.trim();
  } catch (err) {
    return String(err.stderr ?? '').trim();
  }
}

// ---------------------------------------------------------------------------------------------------
// Policies: N ALLOW rules for the caller; only the last matches the benchmark paths, so every request
// walks past N-1 decoys (the worst position for the matching rule).

function decoyRule(i) {
  return {
    from: [{ source: { principals: [`${TRUST_DOMAIN}/ns/loadtest/sa/caller`] } }],
    to: [{ operation: { methods: ['GET', 'POST'], paths: [`/decoy-${i}/*`, `/decoy-${i}`] } }],
  };
}

export function policyDocuments({ rules, jwt, auditDeny, jwks }) {
  const list = [];
  for (let i = 0; i < rules - 1; i++) list.push(decoyRule(i));
  const matching = {
    from: [{ source: { principals: [`${TRUST_DOMAIN}/ns/loadtest/sa/caller`], ...(jwt ? { requestPrincipals: [`${ISSUER}/*`] } : {}) } }],
    to: [{ operation: { paths: ['/api/*', '/loadtest.Bench/*'] } }],
  };
  list.push(auditDeny ? decoyRule(rules - 1) : matching);
  const docs = [{
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'loadtest-allow', namespace: 'loadtest' },
    spec: { selector: { matchLabels: { app: 'workload' } }, action: 'ALLOW', rules: list },
  }];
  if (jwt) {
    docs.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'loadtest-jwt', namespace: 'loadtest' },
      spec: { selector: { matchLabels: { app: 'workload' } }, jwtRules: [{ issuer: ISSUER, audiences: ['workload'], jwks: JSON.stringify(jwks) }] },
    });
  }
  // JSON is YAML: one document per file keeps it simple.
  return docs;
}

// ---------------------------------------------------------------------------------------------------

export async function createEnvironment({ dist, baselineDist, tmp, setups, log, cpuProfDir, nginxWorkers = 1, nodeOptions, childEnv }) {
  const main = join(dist, 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run build)`);
  const baselineMain = baselineDist ? join(baselineDist, 'src', 'main.js') : null;
  // Portcullis ships no extra Node flags; --node-options tries some out, and the results record what ran.
  nodeOptions ??= [];
  const children = [];
  const info = { setups: {}, versions: { node: process.version }, portcullisNodeFlags: nodeOptions };

  /** SIGTERM to every child still running, newest first; SIGKILL to any left after 25 s. */
  async function stop() {
    for (const { child } of [...children].reverse()) {
      if (child.exitInfo) continue;
      child.kill('SIGTERM');
    }
    const deadline = Date.now() + 25_000;
    while (children.some(({ child }) => !child.exitInfo) && Date.now() < deadline) await sleep(100);
    for (const { child } of children) if (!child.exitInfo) child.kill('SIGKILL');
  }
  // Last resort when this process exits without stop() (a throw, process.exit, a signal handler): no child outlives it.
  const killLeftovers = () => { for (const { child } of children) if (!child.exitInfo) child.kill('SIGKILL'); };
  process.once('exit', killLeftovers);

  function start(name, cmd, args, opts = {}) {
    const out = openSync(join(tmp, `${name}.stdout.log`), 'a');
    const err = openSync(join(tmp, `${name}.stderr.log`), 'a');
    // childEnv(name): extra environment for one process (loadtest/promoted.mjs names each setup's profile file).
    const extraEnv = childEnv?.(name);
    const child = spawn(cmd, args, { stdio: ['ignore', opts.pipeStdout ? 'pipe' : out, err], cwd: opts.cwd ?? tmp, ...(extraEnv ? { env: { ...process.env, ...extraEnv } } : {}) });
    children.push({ name, child });
    child.once('exit', (code, signal) => { child.exitInfo = { code, signal }; });
    return child;
  }

  try {
    // --- PKI, through the CLI users have.
    const pki = join(tmp, 'pki');
    run(process.execPath, [main, 'certs', 'init', '--trust-domain', TRUST_DOMAIN, '--out', join(pki, 'ca')]);
    const issue = (id, dir) => run(process.execPath, [main, 'certs', 'issue', '--ca', join(pki, 'ca'), '--spiffe-id', id, '--out', join(pki, dir), '--dns', 'localhost', '--ip', '127.0.0.1']);
    issue(WORKLOAD_ID, 'workload');
    issue(CALLER_ID, 'caller');
    const files = {
      ca: join(pki, 'ca', 'ca.crt'),
      workload: { cert: join(pki, 'workload', 'svid.crt'), key: join(pki, 'workload', 'svid.key'), bundle: join(pki, 'workload', 'bundle.crt') },
      caller: { cert: join(pki, 'caller', 'svid.crt'), key: join(pki, 'caller', 'svid.key'), bundle: join(pki, 'caller', 'bundle.crt') },
    };
    const clientTls = { cert: files.caller.cert, key: files.caller.key, ca: files.ca, servername: 'localhost' };

    // --- JWT: one ES256 key, inline JWKS (the "cached key" case: no fetch on the request path).
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'loadtest-1', alg: 'ES256', use: 'sig' };
    const token = await new SignJWT({ scope: 'loadtest' })
      .setProtectedHeader({ alg: 'ES256', kid: 'loadtest-1', typ: 'JWT' })
      .setIssuer(ISSUER).setSubject('loadtest-user').setAudience('workload')
      .setIssuedAt().setExpirationTime('6h')
      .sign(privateKey);

    // --- upstream
    const upstream = start('upstream', process.execPath, [join(here, 'upstream.mjs')], { pipeStdout: true });
    const upstreamPorts = await new Promise((resolve, reject) => {
      let buf = '';
      upstream.stdout.on('data', (d) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
      });
      upstream.once('exit', () => reject(new Error(`upstream exited early (see ${tmp}/upstream.stderr.log)`)));
    });
    info.upstream = { pid: upstream.pid, ports: upstreamPorts };

    for (const name of setups) {
      const def = SETUP_CATALOG[name];
      if (!def) throw new Error(`unknown setup ${name}; known: ${Object.keys(SETUP_CATALOG).join(', ')}`);
      if (def.kind === 'direct') {
        info.setups[name] = {
          ...def,
          endpoints: {
            h1: { url: `http://127.0.0.1:${upstreamPorts.h1}`, tls: null },
            h2: { url: `http://127.0.0.1:${upstreamPorts.h2}`, tls: null },
            grpc: { url: `http://127.0.0.1:${upstreamPorts.grpc}`, tls: null },
          },
          pids: () => [],
          headers: {},
        };
      } else if (def.kind === 'bare') {
        const ports = { h1: await freePort(), h2: await freePort(), grpc: await freePort() };
        const cfg = {
          cert: files.workload.cert, key: files.workload.key, ca: files.ca, listen: ports, upstream: upstreamPorts,
          ...(def.bindFix ? { bindFix: join(dist, 'src', 'proxy', 'async-resource-bind.js') } : {}),
        };
        const profArgs = cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', join(cpuProfDir, name)] : [];
        const child = start(name, process.execPath, [...nodeOptions, ...profArgs, join(here, 'bare-proxy.mjs'), JSON.stringify(cfg)]);
        await waitFor(async () => {
          if (child.exitInfo) throw exited(`bare proxy exited (see ${tmp}/${name}.stderr.log)`);
          return readFileSync(join(tmp, `${name}.stdout.log`), 'utf8').includes('READY');
        }, 'bare proxy');
        info.setups[name] = {
          ...def,
          endpoints: Object.fromEntries(Object.entries(ports).map(([k, p]) => [k, { url: `https://127.0.0.1:${p}`, tls: clientTls }])),
          pids: () => [child.pid],
          pidList: { [name]: child.pid },
          headers: {},
        };
      } else if (def.kind === 'nginx') {
        const bin = ensureNginx(log);
        if (!bin) { log('nginx unavailable: the nginx setup is skipped'); continue; }
        info.versions.nginx = nginxVersion(bin);
        const prefix = join(tmp, 'nginx');
        mkdirSync(prefix, { recursive: true });
        const ports = { h1: await freePort(), h2: await freePort(), grpc: await freePort() };
        const conf = readFileSync(join(here, 'nginx.conf.template'), 'utf8')
          .replaceAll('{{PREFIX}}', prefix).replaceAll('{{WORKERS}}', String(nginxWorkers))
          .replaceAll('{{CERT}}', files.workload.cert).replaceAll('{{KEY}}', files.workload.key).replaceAll('{{CA}}', files.ca)
          .replaceAll('{{UPSTREAM_H1}}', String(upstreamPorts.h1)).replaceAll('{{UPSTREAM_H2}}', String(upstreamPorts.h2)).replaceAll('{{UPSTREAM_GRPC}}', String(upstreamPorts.grpc))
          .replaceAll('{{LISTEN_H1}}', String(ports.h1)).replaceAll('{{LISTEN_H2}}', String(ports.h2)).replaceAll('{{LISTEN_GRPC}}', String(ports.grpc));
        const confFile = join(prefix, 'nginx.conf');
        writeFileSync(confFile, conf);
        run(bin, ['-t', '-q', '-p', prefix, '-c', confFile]);
        const child = start('nginx', bin, ['-p', prefix, '-c', confFile]);
        await waitFor(async () => existsSync(join(prefix, 'nginx.pid')) && childPids(child.pid).length >= nginxWorkers, 'nginx');
        info.setups[name] = {
          ...def,
          endpoints: Object.fromEntries(Object.entries(ports).map(([k, p]) => [k, { url: `https://127.0.0.1:${p}`, tls: clientTls }])),
          pids: () => [child.pid, ...childPids(child.pid)],
          headers: {},
        };
      } else {
        const startSidecar = async (sidecarName, extra) => {
          const dir = join(tmp, sidecarName);
          mkdirSync(join(dir, 'policies'), { recursive: true });
          policyDocuments({ rules: def.rules, jwt: def.jwt, auditDeny: def.auditDeny, jwks: { keys: [jwk] } })
            .forEach((doc, i) => writeFileSync(join(dir, 'policies', `policy-${i}.yaml`), JSON.stringify(doc, null, 1)));
          const ports = { h1: await freePort(), h2: await freePort(), grpc: await freePort(), admin: await freePort() };
          const config = {
            mode: def.mode,
            listeners: [
              { name: 'h1', listen: `127.0.0.1:${ports.h1}`, upstream: `http://127.0.0.1:${upstreamPorts.h1}` },
              { name: 'h2', listen: `127.0.0.1:${ports.h2}`, upstream: `h2c://127.0.0.1:${upstreamPorts.h2}` },
              { name: 'grpc', listen: `127.0.0.1:${ports.grpc}`, upstream: `h2c://127.0.0.1:${upstreamPorts.grpc}` },
            ],
            admin: `127.0.0.1:${ports.admin}`,
            policies: [join(dir, 'policies')],
            cert: extra?.identity === 'caller' ? files.caller.cert : files.workload.cert,
            key: extra?.identity === 'caller' ? files.caller.key : files.workload.key,
            trustBundle: files.ca,
            namespace: 'loadtest',
            labels: { app: 'workload' },
            serviceAccount: 'workload',
            decisionLog: def.decisionLog ?? join(dir, 'decisions.ndjson'),
            logLevel: 'warn',
            ...(def.concurrency ? { concurrency: def.concurrency } : {}),
            ...(def.capture ? { decisionLogCapture: def.capture } : {}),
            ...(extra?.outbound ? { outbound: extra.outbound } : {}),
          };
          const configFile = join(dir, 'portcullis.yaml');
          writeFileSync(configFile, JSON.stringify(config, null, 1));
          const nodeArgs = [...nodeOptions, ...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', join(cpuProfDir, sidecarName)] : [])];
          if (def.baseline && !baselineMain) throw new Error(`setup ${sidecarName} needs --baseline-dist`);
          const child = start(sidecarName, process.execPath, [...nodeArgs, def.baseline ? baselineMain : main, 'run', '--config', configFile]);
          await waitFor(async () => {
            if (child.exitInfo) throw exited(`${sidecarName} exited (${JSON.stringify(child.exitInfo)}): ${readFileSync(join(tmp, `${sidecarName}.stderr.log`), 'utf8').slice(-2000)}`);
            const res = await fetch(`http://127.0.0.1:${ports.admin}/ready`);
            await res.arrayBuffer();
            return res.ok;
          }, sidecarName);
          return { child, ports, configFile };
        };
        if (def.kind === 'portcullis') {
          const sc = await startSidecar(name);
          info.setups[name] = {
            ...def,
            endpoints: Object.fromEntries(['h1', 'h2', 'grpc'].map((k) => [k, { url: `https://127.0.0.1:${sc.ports[k]}`, tls: clientTls }])),
            // With concurrency, the workers are the primary's children: CPU and RSS are summed over all of them.
            pids: () => [sc.child.pid, ...(def.concurrency ? childPids(sc.child.pid) : [])],
            pidList: { [name]: sc.child.pid },
            admins: { [name]: sc.ports.admin },
            headers: { ...(def.jwt ? { authorization: `Bearer ${token}` } : {}), ...(def.typicalHeaders ? typicalHeaders : {}) },
            configFile: sc.configFile,
          };
        } else {
          const inbound = await startSidecar(`${name}-in`);
          const out = { h1: await freePort(), h2: await freePort(), grpc: await freePort() };
          const outbound = ['h1', 'h2', 'grpc'].map((k) => ({
            name: `to-${k}`, listen: `127.0.0.1:${out[k]}`, target: `https://127.0.0.1:${inbound.ports[k]}`, expectIdentity: WORKLOAD_ID, serverName: 'localhost',
          }));
          const outSc = await startSidecar(`${name}-out`, { identity: 'caller', outbound });
          await waitFor(() => new Promise((resolve) => {
            const s = createServer();
            s.once('error', () => resolve(true));
            s.listen(out.grpc, '127.0.0.1', () => s.close(() => resolve(false)));
          }), `${name}-out outbound listeners`);
          info.setups[name] = {
            ...def,
            endpoints: Object.fromEntries(['h1', 'h2', 'grpc'].map((k) => [k, { url: `http://127.0.0.1:${out[k]}`, tls: null }])),
            pids: () => [outSc.child.pid, inbound.child.pid],
            pidList: { [`${name}-out`]: outSc.child.pid, [`${name}-in`]: inbound.child.pid },
            admins: { [`${name}-out`]: outSc.ports.admin, [`${name}-in`]: inbound.ports.admin },
            headers: {},
            configFile: inbound.configFile,
          };
        }
      }
    }

    try {
      info.versions.portcullis = run(process.execPath, [main, '--version']).trim();
    } catch { /* older builds have no --version */ }

    return { info, files, token, stop, upstreamPid: upstream.pid };
  } catch (err) {
    // A setup that failed half-way: stop what did start before reporting, so nothing is left running.
    log(`setup failed: stopping the ${children.filter(({ child }) => !child.exitInfo).length} processes already started`);
    await stop();
    throw err;
  }
}
