/**
 * A private certificate authority and a server certificate it signed (for 127.0.0.1 and
 * localhost), made with the openssl command line in a directory of the test's own: what a
 * site's internal PKI gives its Redis/Valkey. Two days valid; EC P-256.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasCommand } from './commands.js';

const run = promisify(execFile);

export interface TestCertificates {
  /** The CA's certificate (PEM): what a client must trust. */
  readonly ca: string;
  /** The server's certificate and key (PEM). */
  readonly cert: string;
  readonly key: string;
}

/** Why certificates cannot be made here, or undefined. */
export function opensslMissing(): string | undefined {
  return hasCommand('openssl') ? undefined : 'openssl is not installed (apt-get install openssl)';
}

export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=fcrdns-policyd test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await run('openssl', [
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext'),
  ]);
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}
