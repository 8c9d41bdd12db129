/**
 * hostnameProblem() is a single pass over the characters; the rules it implements (Postfix's
 * valid_hostname() and smtpd_peer.c, POSTFIX-FACTS 13) read more plainly as the regular
 * expressions below, which it must agree with on every input.
 */
import t from 'tap';
import { hostnameProblem, MAX_HOSTNAME_LENGTH, MAX_LABEL_LENGTH } from '../../src/util/hostname.js';
import { parseClientIp } from '../../src/util/ip.js';
import { xorshift32 } from '../helpers/xorshift.js';

/** The rules as the regular expressions they were first written with. */
function byRegularExpressions(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_HOSTNAME_LENGTH) return 'invalid hostname';
  if (parseClientIp(name) !== undefined) return 'numeric name';
  for (const label of name.split('.')) {
    if (label.length === 0 || label.length > MAX_LABEL_LENGTH) return 'invalid hostname';
    if (!/^[a-z0-9_-]+$/.test(label)) return 'invalid hostname';
    if (label.startsWith('-') || label.endsWith('-')) return 'invalid hostname';
  }
  if (/^[0-9.]+$/.test(name)) return 'numeric name';
  return undefined;
}

t.test('agrees with the rules written as regular expressions', async (t) => {
  const fixed = [
    'mail.example.com', 'mail_1.example.com', 'localhost', '1.2.3.4', '2001:db8::1', '::', '123', '1.2.3', '1..2',
    '-a.example.com', 'a-.example.com', 'a..example.com', '.example.com', 'example.com.', 'a', '-', '_', '0', '.',
    'A.example.com', 'a b.example', 'é.example', 'a.-', `${'a'.repeat(63)}.example`, `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(126)}a`, `${'a.'.repeat(126)}ab`, '192.0.2.256', '0x7f.1', 'fe80::1%eth0', 'dead:beef', 'cafe',
  ];
  for (const name of fixed) t.equal(hostnameProblem(name), byRegularExpressions(name), JSON.stringify(name));
  // Random names over the characters that matter: letters, digits, the separators, a few outsiders.
  const alphabet = 'abcdefxyzABF0123456789..--_:% \u00e9';
  const next = xorshift32();
  let disagreements = 0;
  for (let i = 0; i < 100_000; i++) {
    const length = next() % (i % 100 === 0 ? 300 : 20);
    let name = '';
    for (let c = 0; c < length; c++) name += alphabet[next() % alphabet.length];
    if (hostnameProblem(name) !== byRegularExpressions(name)) disagreements++;
  }
  t.equal(disagreements, 0, '100,000 random names');
});
