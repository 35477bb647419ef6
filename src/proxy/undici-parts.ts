// Owns which parts of undici the data plane loads: its Pool, connector and header-name lookup, from undici's own
// files instead of its index, which also loads fetch, WebSocket, caches and mocks (about 9 MB more RSS per sidecar).

import { createRequire } from 'node:module';
import type { Pool as UndiciPool, buildConnector as UndiciBuildConnector } from 'undici';

// undici 7 has no "exports" map, so its files are reachable; undici-parts.test.ts checks that each is
// the very object undici's index exports, so an upgrade that moves one fails the suite, not a sidecar.
const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
export const buildConnector = require('undici/lib/core/connect.js') as typeof UndiciBuildConnector;
/** A header name as undici hands it to a dispatch handler, lower-cased; known names come from undici's own table. */
export const headerNameToString = (require('undici/lib/core/util.js') as { headerNameToString: (value: string | Buffer) => string }).headerNameToString;
