// Test helper: real X.509 CRLs made by `openssl ca -revoke` / `-gencrl` with a test CA's own key, so the
// CRL parser is checked against an independent implementation rather than against itself.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A CRL signed by `ca` listing `revokedPems` (certificates it issued), PEM or DER. */
export function makeCrl(ca: { caCertPem: string; caKeyPem: string }, revokedPems: readonly string[], format: 'pem' | 'der' = 'pem'): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-crl-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), ca.caCertPem);
    writeFileSync(join(dir, 'ca.key'), ca.caKeyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(join(dir, 'ca.cnf'), `[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = ${join(dir, 'index.txt')}\ncrlnumber = ${join(dir, 'crlnumber')}\ndefault_md = sha256\ndefault_crl_days = 1\n`);
    const base = ['-config', join(dir, 'ca.cnf'), '-keyfile', join(dir, 'ca.key'), '-cert', join(dir, 'ca.pem')];
    revokedPems.forEach((pem, i) => {
      const file = join(dir, `revoked-${i}.pem`);
      writeFileSync(file, pem);
      execFileSync('openssl', ['ca', ...base, '-revoke', file], { stdio: 'ignore' });
    });
    execFileSync('openssl', ['ca', ...base, '-gencrl', '-out', join(dir, 'crl.pem')], { stdio: 'ignore' });
    if (format === 'pem') return readFileSync(join(dir, 'crl.pem'));
    execFileSync('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-outform', 'DER', '-out', join(dir, 'crl.der')], { stdio: 'ignore' });
    return readFileSync(join(dir, 'crl.der'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
