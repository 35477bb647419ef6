// Benchmark for peer verification: cold (full X509-SVID validation) versus cached, from DER and from a
// live TLS socket. Prints figures; asserts nothing. Run: node --import tsx src/identity/bench/bench-peer.ts

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { PeerVerifier } from '../peer.js';
import { createTestPki, TEST_IDS } from '../../../test/helpers/pki.js';

function measure(label: string, iterations: number, fn: () => void): void {
  for (let i = 0; i < Math.min(200, iterations); i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  process.stdout.write(`${label.padEnd(44)} ${(ns / 1000).toFixed(2).padStart(9)} µs/op  (${iterations} ops)\n`);
}

const pki = createTestPki();
const leaf = pki.issue({ spiffeId: TEST_IDS.frontend });
const viaIntermediate = pki.intermediate().issue({ spiffeId: TEST_IDS.frontend });
const bundle = [pki.caCert];
const opts = { now: Date.now(), trustDomains: ['cluster.local'] };
const der = [leaf.cert.raw];

measure('DER, cold (new verifier each time)', 2000, () => new PeerVerifier().verify(der, bundle, opts));
const warm = new PeerVerifier();
measure('DER, cached', 20000, () => warm.verify(der, bundle, opts));
const chainDer = viaIntermediate.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => Buffer.from(p.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'));
measure('DER via intermediate, cold', 2000, () => new PeerVerifier().verify(chainDer, bundle, opts));

const server = tls.createServer({ cert: leaf.chainPem, key: leaf.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true }, (socket) => {
  measure('TLS socket, cold', 1000, () => new PeerVerifier().verify(socket, bundle, opts));
  const v = new PeerVerifier();
  measure('TLS socket, cached', 5000, () => v.verify(socket, bundle, opts));
  socket.end();
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const client = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: pki.caCertPem, cert: leaf.chainPem, key: leaf.keyPem, checkServerIdentity: () => undefined });
client.resume();
await once(client, 'end');
server.close();
