// Owns the HTTPS listener of `portcullis webhook`: POST /inject (AdmissionReview JSON) and GET /healthz,
// with the serving certificate re-read when its files change (cert-manager rotation) and bounded bodies.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { reviewAdmission } from './admission.js';
import type { InjectorOptions } from './sidecar.js';

export interface WebhookServerOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  injector: InjectorOptions;
  /** One line per decision (JSON). */
  log: (entry: Record<string, unknown>) => void;
  /** How often the certificate files are checked besides fs events (default 30 s). */
  certPollMs?: number;
}

export interface WebhookServer {
  address(): AddressInfo;
  close(): Promise<void>;
}

/** The API server sends at most a few MiB (an object plus its old version); more is not a review. */
const maxBodyBytes = 8 * 1024 * 1024;

async function readPair(certFile: string, keyFile: string): Promise<{ cert: string; key: string }> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  createSecureContext({ cert, key }); // throws on a mismatched or unparsable pair before it is used
  return { cert, key };
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  let pair = await readPair(opts.certFile, opts.keyFile);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) { sendText(res, 200, 'ok\n'); return; }
    if (path !== '/inject') { sendText(res, 404, 'not found\n'); return; }
    if (req.method !== 'POST') { res.setHeader('allow', 'POST'); sendText(res, 405, 'method not allowed\n'); return; }
    const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') { sendText(res, 415, 'expected application/json\n'); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      if (aborted) return;
      size += c.length;
      if (size > maxBodyBytes) {
        aborted = true;
        sendText(res, 413, 'request too large\n');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (aborted) return;
      let body: unknown;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { sendText(res, 400, 'body is not JSON\n'); return; }
      let result;
      try {
        result = reviewAdmission(body, opts.injector);
      } catch (err) {
        // A bug must not answer "allowed": a 500 lets the API server apply the failurePolicy.
        opts.log({ level: 'error', msg: 'admission review failed', error: err instanceof Error ? err.message : String(err) });
        sendText(res, 500, 'internal error\n');
        return;
      }
      if (!result.ok) { opts.log({ level: 'warn', msg: 'bad admission request', error: result.error }); sendText(res, 400, `${result.error}\n`); return; }
      opts.log({ level: 'info', msg: 'admission', uid: result.review.response.uid, outcome: result.outcome, detail: result.detail });
      sendJson(res, 200, result.review);
    });
  };

  const server: Server = createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }, handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  // Certificate rotation: re-read on change, keep the last good pair if the new one is unusable.
  let reloading = false;
  const reload = async (): Promise<void> => {
    if (reloading) return;
    reloading = true;
    try {
      const next = await readPair(opts.certFile, opts.keyFile);
      if (next.cert !== pair.cert || next.key !== pair.key) {
        server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
        pair = next;
        opts.log({ level: 'info', msg: 'serving certificate reloaded' });
      }
    } catch (err) {
      opts.log({ level: 'error', msg: 'serving certificate reload failed; keeping the previous one', error: err instanceof Error ? err.message : String(err) });
    } finally {
      reloading = false;
    }
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(opts.certFile), dirname(opts.keyFile)])) {
    try {
      const w = watch(dir, { persistent: false }, () => { void reload(); });
      w.on('error', () => { /* the poll below still runs */ });
      watchers.push(w);
    } catch { /* the poll below still runs */ }
  }
  const poll = setInterval(() => { void reload(); }, opts.certPollMs ?? 30_000);
  poll.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });

  return {
    address: () => server.address() as AddressInfo,
    close: async () => {
      clearInterval(poll);
      for (const w of watchers) w.close();
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    },
  };
}
