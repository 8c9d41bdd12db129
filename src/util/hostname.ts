/**
 * Host-name syntax as Postfix reads PTR names (its valid_hostname() and smtpd_peer.c), used by
 * the PTR answer handling, the HELO check and the config's name lists. Pure: no DNS.
 */
import { parseClientIp } from './ip.js';

/** RFC 1035 §2.3.4: names are at most 255 octets (253 characters in text), labels at most 63. */
export const MAX_HOSTNAME_LENGTH = 253;
export const MAX_LABEL_LENGTH = 63;

/** Why a name is not a host name. */
export type NameProblem = 'invalid hostname' | 'numeric name';

/**
 * Why a PTR target is not a usable hostname, or undefined when it is. Mirrors Postfix's
 * valid_hostname() and smtpd_peer.c: letters, digits, hyphens and underscores (underscores are
 * accepted), no label starting or ending with a hyphen, labels ≤ 63 and the name ≤ 255 octets
 * (RFC 1035 §2.3.4), and an all-numeric name or an IP address is not a name (POSTFIX-FACTS 13).
 */
export function hostnameProblem(name: string): NameProblem | undefined {
  const length = name.length;
  if (length === 0 || length > MAX_HOSTNAME_LENGTH) return 'invalid hostname';
  if (parseClientIp(name) !== undefined) return 'numeric name';
  // One pass over the characters, label by label (a label ends at a dot or at the end). It runs
  // for every PTR name and HELO name of every new client: splitting into labels and testing each
  // with a regular expression allocated an array, the labels and a RegExp per label.
  let labelStart = 0;
  let digitsOnly = true;
  for (let at = 0; at <= length; at++) {
    const code = at < length ? name.charCodeAt(at) : DOT;
    if (code === DOT) {
      const labelLength = at - labelStart;
      if (labelLength === 0 || labelLength > MAX_LABEL_LENGTH) return 'invalid hostname';
      if (name.charCodeAt(labelStart) === HYPHEN || name.charCodeAt(at - 1) === HYPHEN) return 'invalid hostname';
      labelStart = at + 1;
    } else if (code >= DIGIT_0 && code <= DIGIT_9) {
      // A digit: an all-digit name (dots aside) is numeric.
    } else if ((code >= LOWER_A && code <= LOWER_Z) || code === HYPHEN || code === UNDERSCORE) {
      digitsOnly = false;
    } else {
      return 'invalid hostname';
    }
  }
  return digitsOnly ? 'numeric name' : undefined;
}

const DOT = 0x2e;
const HYPHEN = 0x2d;
const UNDERSCORE = 0x5f;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_A = 0x61;
const LOWER_Z = 0x7a;

/** Lower-case, without the root dot: names compare case-insensitively (RFC 4343). */
export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
