/**
 * The Authentication-Results header (RFC 8601) for the iprev method, as a Postfix PREPEND
 * action. Only validated values reach it: the authserv-id from the config (a host name), the
 * canonical client IP, and a forward-confirmed host name.
 */
import type { ClientIp } from '../util/ip.js';
import type { IprevResult } from '../dns/iprev.js';

/**
 * RFC 8601 §2.7.3 iprev results: pass when a PTR name resolves back; fail when names exist but
 * none confirms (mismatch, or the forward lookup found nothing); permerror when there is no PTR
 * data at all; temperror on transient DNS trouble.
 */
export function iprevResultWord(result: IprevResult['result']): 'pass' | 'fail' | 'permerror' | 'temperror' {
  switch (result) {
    case 'pass':
      return 'pass';
    case 'no_forward':
    case 'mismatch':
      return 'fail';
    case 'no_ptr':
      return 'permerror';
    case 'temperror':
      return 'temperror';
  }
}

/** `Authentication-Results: mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)` */
export function authenticationResults(authservId: string, ip: ClientIp, iprev: Pick<IprevResult, 'result' | 'confirmedNames'>): string {
  // RFC 8601 §2.2: a property value with ":" (an IPv6 address) must be a quoted-string.
  const address = ip.family === 6 ? `"${ip.text}"` : ip.text;
  const comment = iprev.result === 'pass' && iprev.confirmedNames[0] ? ` (${iprev.confirmedNames[0]})` : '';
  return `Authentication-Results: ${authservId}; iprev=${iprevResultWord(iprev.result)} policy.iprev=${address}${comment}`;
}
