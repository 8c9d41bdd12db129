/**
 * Generic (dynamic-looking) PTR names: a name that is forward-confirmed but looks like an
 * access provider's automatic name for an end-user or pool address — the IP's digits in the
 * host part, or access-network words. Pure; a signal for its own action, never a DNS failure.
 */
import { getDomain } from 'tldts';
import type { ClientIp } from '../util/ip.js';

export { GENERIC_LEVELS, type GenericLevel } from '../config/presets.js';
import type { GenericLevel } from '../config/presets.js';

/** Words that name an access network. Conservative: unambiguous ones. */
const STRONG_KEYWORDS = [
  'dyn', 'dynamic', 'dynip', 'pool', 'dhcp', 'dsl', 'adsl', 'vdsl', 'xdsl', 'sdsl', 'ppp', 'pppoe', 'cable', 'cpe',
  'customer', 'cust', 'client', 'clients', 'dialup', 'dial', 'broadband', 'bband', 'dip', 'dialin', 'modem',
];
/** Aggressive adds words that are common in end-user names but also seen on servers. */
const WEAK_KEYWORDS = [
  'ip', 'host', 'user', 'users', 'res', 'resnet', 'home', 'nat', 'wlan', 'wifi', 'mobile', 'gprs', 'lte', '3g', '4g', '5g',
  'fiber', 'fibre', 'ftth', 'fttx', 'catv', 'wireless', 'subscriber', 'sub', 'access', 'hsd', 'cm', 'vpn', 'guest', 'pcs',
];
/**
 * Words that say a host sends mail, or has a statically assigned address: a name with one in any
 * label under its registered domain is not generic (`192-0-2-5.outbound-mail.esp.example`,
 * `a12-34.smtp-out.esp.example`, `web123.mail.provider.example`, `mx0a-00123abc.vendor.example`:
 * large senders' relays carry the address in the first label and the role in a later one).
 * A role word may carry a number and a letter (`mx0a`, `smtp2`, `out3b`).
 */
const ROLE_WORDS = ['mail', 'mx', 'smtp', 'static', 'mta', 'relay', 'out', 'outbound', 'outgoing', 'mailout', 'smtpout', 'mailer', 'bounce', 'bounces', 'email'];
const isRoleWord = (word: string): boolean => ROLE_WORDS.includes(word) || ROLE_WORDS.includes(word.replace(/\d+[a-z]?$/, ''));

/**
 * How providers write the client's address in a name: the forms `addressInHost` looks for, in
 * the order it looks. Built only for a host part that contains each of the last three octets
 * (IPv4) or is long enough (IPv6); most names are neither, and a new client costs no forms then.
 */
function addressForms(ip: ClientIp, level: GenericLevel): string[] {
  if (ip.family === 4) {
    const octets = ip.text.split('.');
    const reversed = [...octets].reverse();
    const padded = octets.map((octet) => octet.padStart(3, '0'));
    const forms = [
      octets.join('-'), octets.join('.'), octets.join('_'), octets.join(''),
      reversed.join('-'), reversed.join('.'), reversed.join('_'), reversed.join(''),
      padded.join('-'), padded.join('.'), padded.join(''),
      ipv4Hex(ip),
    ];
    // Not two octets alone: `a12-34.smtp-out.esp.example` and `m12-34.esp.example` are the standard
    // shape of large bulk-mail relays (issue 16); two octets count with a third (partialAddress).
    if (level === 'aggressive') forms.push(octets.slice(1).join('-'));
    return forms;
  }
  const full = ipv6Hex(ip);
  const nibbles = full.split('');
  const forms = [full, nibbles.join('.'), [...nibbles].reverse().join('.'), full.slice(16), ip.text.replace(/:/g, '-')];
  if (level === 'aggressive') forms.push(full.slice(24));
  return forms;
}

/** The IPv4 address as eight hex digits (`c0000205`). */
function ipv4Hex(ip: ClientIp): string {
  const [a = 0, b = 0, c = 0, d = 0] = (ip.parsed as { octets: number[] }).octets;
  return (((a << 24) | (b << 16) | (c << 8) | d) >>> 0).toString(16).padStart(8, '0');
}

/** The IPv6 address as 32 hex digits. */
function ipv6Hex(ip: ClientIp): string {
  const parsed = ip.parsed as { toNormalizedString(): string; toFixedLengthString?: () => string };
  return (parsed.toFixedLengthString?.() ?? parsed.toNormalizedString()).replace(/:/g, '');
}

/**
 * The first of `addressForms` in `hostText`, without building the forms that cannot be there.
 * Every IPv4 form but the hex one holds the last three octets' digits, so a host part without one
 * of them can hold only the hex form; an IPv6 form longer than the host part cannot be in it.
 * Nothing is remembered per client: a client is judged again only when its memo no longer stands.
 */
function firstFormIn(hostText: string, ip: ClientIp, level: GenericLevel, shortestForm: number): string | undefined {
  const room = hostText.length;
  if (ip.family === 4) {
    const { octets } = ip.parsed as { octets: number[] };
    const mayHoldDecimal = octets.every((octet, index) => index === 0 || hostText.includes(String(octet)));
    if (!mayHoldDecimal) {
      if (room < 8) return undefined;
      const hex = ipv4Hex(ip);
      return hostText.includes(hex) ? hex : undefined;
    }
    return firstListedIn(hostText, addressForms(ip, level), shortestForm);
  }
  const dashedLength = ip.text.length;
  const shortestHex = level === 'aggressive' ? 8 : 16;
  if (room < shortestHex && (room < dashedLength || dashedLength < shortestForm)) return undefined;
  if (room >= 63) return firstListedIn(hostText, addressForms(ip, level), shortestForm);
  // Only the forms of 32 hex digits or fewer, and the text with dashes, fit: in addressForms' order.
  const full = room >= shortestHex ? ipv6Hex(ip) : '';
  if (room >= 32 && hostText.includes(full)) return full;
  if (room >= 16) {
    const last64 = full.slice(16);
    if (hostText.includes(last64)) return last64;
  }
  if (room >= dashedLength && dashedLength >= shortestForm) {
    const dashed = ip.text.replace(/:/g, '-');
    if (hostText.includes(dashed)) return dashed;
  }
  if (level === 'aggressive' && room >= 8) {
    const last32 = full.slice(24);
    if (hostText.includes(last32)) return last32;
  }
  return undefined;
}

/** The first of `forms` that counts (`shortestForm` or longer) and stands in `hostText`. */
function firstListedIn(hostText: string, forms: readonly string[], shortestForm: number): string | undefined {
  return forms.find((form) => form.length >= shortestForm && hostText.includes(form));
}

/** Which rule found a name generic (logged as `generic.rule`, shown by `check`). */
export type GenericRule = 'address' | 'partial-address' | 'pool-line' | 'access-word' | 'digit-heavy';

export interface GenericSignal {
  readonly rule: GenericRule;
  readonly reason: 'address in name' | 'access-network word';
  readonly detail: string;
}

/**
 * The labels of a name under its registered domain (the public suffix list, via tldts:
 * `a.b.example.co.uk` → `a`, `b`), or all but the last two when the suffix is unknown. The
 * provider's own domain is never evidence on its own (`dsl.example.net` as the zone).
 */
function hostLabels(labels: readonly string[], name: string): string[] {
  const registered = getDomain(name, { allowPrivateDomains: false });
  const kept = registered ? labels.length - registered.split('.').length : labels.length - 2;
  return labels.slice(0, Math.max(1, kept));
}

/** The client's address in the host part, in one of the forms providers write it (no exemptions). */
export function addressInName(name: string, ip: ClientIp, level: GenericLevel): string | undefined {
  return addressInHost(hostLabels(name.toLowerCase().split('.'), name).join('.'), ip, level);
}

function addressInHost(hostText: string, ip: ClientIp, level: GenericLevel): string | undefined {
  const shortestForm = level === 'aggressive' ? 3 : 7;
  // A host part shorter than any form that counts cannot hold one: most server names
  // (mail, mx1, smtp-out) need no address forms built at all.
  if (hostText.length < shortestForm) return undefined;
  return firstFormIn(hostText, ip, level, shortestForm);
}

/** Where `run` stands in `text` as whole numbers (no digit right before or after it), or -1. */
function wholeNumbersAt(text: string, run: string): number {
  const isDigit = (at: number) => at >= 0 && at < text.length && text.charCodeAt(at) >= 48 && text.charCodeAt(at) <= 57;
  for (let at = text.indexOf(run); at !== -1; at = text.indexOf(run, at + 1)) {
    if (!isDigit(at - 1) && !isDigit(at + run.length)) return at;
  }
  return -1;
}

/**
 * Part of the address in order (two or three octets, forward or reversed, joined by `-` or `.`),
 * with the rest of it as numbers of their own elsewhere in the host part, so that at least three
 * octets are there: `d5-203-0-113.nap.isp.example` (203.0.113.5), `modemcable005.113-0-203.…`,
 * `lfbn-tou-1-1502-5.w203-0.abo.isp.example`. Providers that split the address this way are
 * numbering customer lines; a relay's two trailing octets alone (`a12-34.esp.example`) are not enough.
 */
function partialAddress(hostText: string, ip: ClientIp): string | undefined {
  if (ip.family !== 4) return undefined;
  const octets = ip.text.split('.');
  const text = hostText.replace(/[._]/g, '-');
  const orders = [octets, [...octets].reverse()];
  for (const order of orders) {
    for (const length of [3, 2]) {
      for (let start = 0; start + length <= 4; start++) {
        const run = order.slice(start, start + length).join('-');
        const at = wholeNumbersAt(text, run);
        if (at === -1) continue;
        const outside = `${text.slice(0, at)} ${text.slice(at + run.length)}`;
        const numbers = new Set((outside.match(/\d+/g) ?? []).map((digits) => String(Number(digits))));
        const rest = order.filter((_, i) => i < start || i >= start + length);
        const present = rest.filter((octet) => numbers.has(octet));
        if (length + present.length >= 3 && present.length >= 1) return `${run} + ${present.join(', ')}`;
      }
    }
  }
  return undefined;
}

/** An access word, alone, numbered (`cable7a`, `dsl12`) or two run together (`modemcable`). */
function accessWord(word: string, keywords: readonly string[]): boolean {
  const bare = word.replace(/\d+[a-z]?$/, '').replace(/\d+$/, '');
  if (keywords.includes(word) || keywords.includes(bare)) return true;
  return keywords.some((first) => first.length >= 4 && bare.startsWith(first) && keywords.includes(bare.slice(first.length)));
}

/**
 * Whether a (forward-confirmed) PTR name looks generic, and which rule says so. The name is
 * judged as a whole: the labels under its registered domain (hostLabels), any role word in any
 * of them (ROLE_WORDS) exempts it, then the address forms, the split address, a pool line
 * number, the access-network words, and (aggressive) a first label half made of digits.
 */
export function genericSignal(name: string, ip: ClientIp, level: GenericLevel): GenericSignal | undefined {
  const labels = name.toLowerCase().split('.');
  const host = hostLabels(labels, name);
  const words = host.flatMap((label) => label.split(/[-_]/)).filter((word) => word !== '');
  if (words.some(isRoleWord)) return undefined;
  const hostText = host.join('.');
  const address = addressInHost(hostText, ip, level);
  if (address !== undefined) return { rule: 'address', reason: 'address in name', detail: address };
  const split = partialAddress(hostText, ip);
  if (split !== undefined) return { rule: 'partial-address', reason: 'address in name', detail: split };
  // A provider's pool and line number instead of the address (`p1234-ipngn5501city.city.isp.example`).
  const line = host.find((label) => /^p\d{3,}-ip/.test(label));
  if (line !== undefined) return { rule: 'pool-line', reason: 'access-network word', detail: line };
  const keywords = level === 'aggressive' ? [...STRONG_KEYWORDS, ...WEAK_KEYWORDS] : STRONG_KEYWORDS;
  for (const word of words) {
    if (accessWord(word, keywords)) return { rule: 'access-word', reason: 'access-network word', detail: word };
  }
  if (level === 'aggressive') {
    const first = host[0] ?? '';
    const digits = first.replace(/[^0-9]/g, '').length;
    // At least 8 characters: a bulk relay's `so254-9` or `m228-13` is short and half digits too.
    if (first.length >= 8 && digits * 2 >= first.length) return { rule: 'digit-heavy', reason: 'address in name', detail: first };
  }
  return undefined;
}
