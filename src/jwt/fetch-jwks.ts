// Owns fetching JWKS documents for jwksUri: `file://` from the local filesystem, `https://` with undici and
// verified certificates only; bounded by a timeout and a size cap. Plain http and redirects are refused.

import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Agent } from 'undici';

export interface JwksFetcherOptions {
  /** `run` allows https; `check` and tests may restrict themselves to file://. */
  allowHttps: boolean;
  /** PEM trust anchors for https JWKS servers; the system roots when omitted. */
  ca?: string;
  /** Largest accepted document (default 1 MiB). */
  maxBytes?: number;
}

export type JwksFetcher = ((uri: string, timeoutMs: number) => Promise<string>) & {
  /** Closes pooled https connections. */
  close(): Promise<void>;
};

const DEFAULT_MAX_BYTES = 1024 * 1024;

async function readFileCapped(uri: string, maxBytes: number): Promise<string> {
  const handle = await open(fileURLToPath(uri), 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new Error(`JWKS file ${uri} is ${size} bytes, above the ${maxBytes}-byte cap`);
    // Read one byte beyond the cap so a file that grows after stat() is still refused.
    const buffer = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > maxBytes) throw new Error(`JWKS file ${uri} exceeds the ${maxBytes}-byte cap`);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

export function createJwksFetcher(options: JwksFetcherOptions): JwksFetcher {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let agent: Agent | undefined;
  // undici's index (fetch, WebSocket, caches) is loaded only by a sidecar that fetches JWKS over https.
  const undici = async () => import('undici');
  const httpsAgent = async (): Promise<Agent> => {
    const { Agent } = await undici();
    agent ??= new Agent({
      connect: { rejectUnauthorized: true, ...(options.ca !== undefined ? { ca: options.ca } : {}) },
      keepAliveTimeout: 10_000,
    });
    return agent;
  };

  async function fetchHttps(uri: string, timeoutMs: number): Promise<string> {
    const { request } = await undici();
    const response = await request(uri, {
      method: 'GET',
      dispatcher: await httpsAgent(),
      headers: { accept: 'application/json, application/jwk-set+json' },
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      throw new Error(`JWKS ${uri} answered HTTP ${response.statusCode}`);
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      response.body.destroy();
      throw new Error(`JWKS ${uri} declares ${declared} bytes, above the ${maxBytes}-byte cap`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > maxBytes) {
        response.body.destroy();
        throw new Error(`JWKS ${uri} exceeds the ${maxBytes}-byte cap`);
      }
      chunks.push(buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  const fetcher = async (uri: string, timeoutMs: number): Promise<string> => {
    let scheme: string;
    try {
      scheme = new URL(uri).protocol;
    } catch {
      throw new Error(`JWKS URI ${JSON.stringify(uri)} is not a URL`);
    }
    if (scheme === 'file:') return readFileCapped(uri, maxBytes);
    if (scheme === 'https:') {
      if (!options.allowHttps) throw new Error(`JWKS URI ${uri}: https fetching is disabled here (use a file:// URI)`);
      return fetchHttps(uri, timeoutMs);
    }
    // Keys fetched over plain http could be swapped by anyone on the path.
    throw new Error(`JWKS URI ${uri}: only https:// and file:// are supported`);
  };
  return Object.assign(fetcher, {
    close: async (): Promise<void> => {
      const current = agent;
      agent = undefined;
      if (current) await current.close();
    },
  });
}
