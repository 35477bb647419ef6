// Memory under hostile clients: `portcullis run` in a child process, its RSS read from /proc before and
// after each bounded attack over loopback (rapid reset, HTTP/1.1 pipeline flood, h2 control-frame flood).
// The bound is per attacking connection: under 10 MiB of RSS growth. Memory is measured, never time.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { ALLOW_FRONTEND_POLICY, closedPort, startH1Upstream, type RecordingUpstream } from './harness.js';
import { sharedTestPki, writePkiFiles } from '../helpers/pki.js';
import { repoRoot } from '../helpers/paths.js';
import { connectRawH2, frame, FRAME, FLAG, headerBlock } from '../helpers/h2-raw.js';

const MiB = 1024 * 1024;
const LIMIT = 10 * MiB;
const linux = existsSync('/proc/self/status');

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function settle(ms = 300): Promise<void> { await new Promise((r) => setTimeout(r, ms)); }

describe('RSS growth per attacking connection stays under 10 MiB', { skip: linux ? false : 'needs /proc' }, () => {
  let child: ChildProcess;
  let upstream: RecordingUpstream;
  let dir: string;
  let port: number;
  const { pki, svids } = sharedTestPki();
  const figures: string[] = [];

  before(async () => {
    upstream = await startH1Upstream();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-mem-'));
    const files = writePkiFiles(join(dir, 'pki'), pki, { server: svids.server });
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'p.yaml'), ALLOW_FRONTEND_POLICY);
    port = await closedPort();
    const server = files.files.server as { cert: string; key: string };
    child = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'main.js'), 'run',
      '--listener', `name=in,listen=127.0.0.1:${port},upstream=${upstream.url},workloadPort=8080`,
      '--policies', join(dir, 'policies'), '--cert', server.cert, '--key', server.key, '--trust-bundle', files.bundle,
      '--namespace', 'foo', '--service-account', 'httpbin', '--admin', '127.0.0.1:0', '--decision-log', 'off', '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caCertPem, cert: svids.frontend.chainPem, key: svids.frontend.keyPem }, () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (up) break;
      await settle(100);
    }
    // Warm-up: the first requests allocate the code paths every later measurement shares.
    for (let i = 0; i < 3; i++) await pipelineFlood(200);
    // One full rapid reset first: the figures are steady-state growth per attack, not first use of HTTP/2.
    await rapidReset(20);
    await settle(500);
  });
  after(async () => {
    process.stdout.write(`# attack memory: ${figures.join('; ')}\n`);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Each attack runs twice on fresh connections and the smaller growth is judged: RSS also moves with
  // when the collector happens to run, which a loaded machine shifts, while memory an attacking
  // connection really holds shows up in both runs.
  async function measure(name: string, attack: () => Promise<void>): Promise<void> {
    const growths: number[] = [];
    for (let run = 0; run < 2; run++) {
      await settle();
      const before = rssOf(child.pid as number);
      await attack();
      await settle(500);
      growths.push(rssOf(child.pid as number) - before);
    }
    const growth = Math.min(...growths);
    figures.push(`${name} ${growths.map((g) => (g / MiB).toFixed(1)).join(' / ')} MiB`);
    assert.ok(growth < LIMIT, `${name}: RSS grew ${growths.map((g) => (g / MiB).toFixed(1)).join(' and ')} MiB in two runs`);
  }

  function pipelineFlood(requests: number): Promise<void> {
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caCertPem, cert: svids.frontend.chainPem, key: svids.frontend.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
        const one = 'GET /public/a HTTP/1.1\r\nHost: api\r\n\r\n';
        s.write(one.repeat(requests));
        setTimeout(() => s.destroy(), 1500);
      });
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
  }

  async function rapidReset(batches: number): Promise<void> {
      const h = await connectRawH2({ port, ca: pki.caCertPem, cert: svids.frontend.chainPem, key: svids.frontend.keyPem });
      h.socket.on('error', () => undefined);
      for (let batch = 0; batch < batches && !h.socket.destroyed; batch++) {
        const frames: Buffer[] = [];
        for (let i = 0; i < 100; i++) {
          const id = 1 + 2 * (batch * 100 + i);
          frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock('GET', '/public/a', 'api')));
          const code = Buffer.alloc(4); code.writeUInt32BE(8);
          frames.push(frame(FRAME.RST_STREAM, 0, id, code));
        }
        h.write(Buffer.concat(frames));
        await settle(10);
      }
      await Promise.race([h.closed, settle(1500)]);
      h.socket.destroy();
  }

  it('rapid reset (CVE-2023-44487): 2,000 HEADERS + RST_STREAM pairs', async () => {
    await measure('rapid reset', () => rapidReset(20));
  });

  it('HTTP/1.1 pipeline flood: 5,000 pipelined requests in one write', async () => {
    await measure('pipeline flood', () => pipelineFlood(5000));
  });

  it('h2 control-frame flood: 20,000 PINGs and empty SETTINGS', async () => {
    await measure('control-frame flood', async () => {
      const h = await connectRawH2({ port, ca: pki.caCertPem, cert: svids.frontend.chainPem, key: svids.frontend.keyPem });
      h.socket.on('error', () => undefined);
      for (let batch = 0; batch < 20 && !h.socket.destroyed; batch++) {
        const frames: Buffer[] = [];
        for (let i = 0; i < 500; i++) frames.push(frame(FRAME.PING, 0, 0, Buffer.alloc(8, i & 0xff)), frame(FRAME.SETTINGS, 0, 0));
        h.write(Buffer.concat(frames));
        await settle(10);
      }
      await Promise.race([h.closed, settle(1500)]);
      h.socket.destroy();
    });
  });
});
