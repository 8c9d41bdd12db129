/**
 * The test zones, all under documentation ranges (RFC 5737 192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24; RFC 3849 2001:db8::/32) and example.com (RFC 2606).
 */
import { parseClientIp, reverseName } from '../../src/util/ip.js';
import type { ZoneSpec } from './knot.js';

/** The owner of a v6 address's PTR, relative to the 8.b.d.0.1.0.0.2.ip6.arpa zone. */
function v6Owner(address: string): string {
  return reverseName(parseClientIp(address)!).replace('.8.b.d.0.1.0.0.2.ip6.arpa', '');
}

export const ZONES: Record<string, ZoneSpec> = {
  'example.com': [
    'ns A 127.0.0.1',
    'mail A 192.0.2.10',
    'mismatch A 192.0.2.99',
    'stale A 192.0.2.98',
    'good14 A 192.0.2.14',
    'cname A 192.0.2.15',
    'upper A 192.0.2.16',
    'dual A 192.0.2.17',
    'dual AAAA 2001:db8::17',
    'mx6 AAAA 2001:db8::25',
    'v4only A 192.0.2.27',
    'burst A 203.0.113.50',
    'cli A 203.0.113.60',
    // check HOST cases
    'both A 192.0.2.40',
    'both AAAA 2001:db8::40',
    'v6noptr A 192.0.2.41',
    'v6noptr AAAA 2001:db8::41',
    'provider A 192.0.2.42',
    'twoa A 192.0.2.10',
    'twoa A 192.0.2.11',
    'alias CNAME both.example.com.',
    'dynhost A 192.0.2.43',
    '192-0-2-43.dyn A 192.0.2.43',
  ],
  // An access provider's zone: its automatic PTR names have no address records.
  'isp.example.net': ['ns A 127.0.0.1'],
  // Configured but unloadable: every forward lookup under it is SERVFAIL.
  'broken.example.net': 'broken',
  '2.0.192.in-addr.arpa': [
    '10 PTR mail.example.com.',
    '12 PTR noforward.example.com.',
    '13 PTR mismatch.example.com.',
    '14 PTR stale.example.com.',
    '14 PTR good14.example.com.',
    // RFC 2317 classless delegation: the PTR lives behind a CNAME.
    '15 CNAME 15.0-25',
    '15.0-25 PTR cname.example.com.',
    '16 PTR UPPER.Example.COM.',
    '17 PTR dual.example.com.',
    '18 PTR host.broken.example.net.',
    '19 PTR 192.0.2.19.',
    '40 PTR both.example.com.',
    '41 PTR v6noptr.example.com.',
    '42 PTR 192-0-2-42.static.isp.example.net.',
    '43 PTR 192-0-2-43.dyn.example.com.',
  ],
  '113.0.203.in-addr.arpa': ['50 PTR burst.example.com.', '60 PTR cli.example.com.'],
  // Configured but unloadable: every PTR lookup in 198.51.100.0/24 is SERVFAIL.
  '100.51.198.in-addr.arpa': 'broken',
  '8.b.d.0.1.0.0.2.ip6.arpa': [
    `${v6Owner('2001:db8::17')} PTR dual.example.com.`,
    `${v6Owner('2001:db8::25')} PTR mx6.example.com.`,
    `${v6Owner('2001:db8::27')} PTR v4only.example.com.`,
    `${v6Owner('2001:db8::40')} PTR both.example.com.`,
  ],
};
