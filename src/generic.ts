/**
 * Generic (dynamic-looking) PTR names: a name that is forward-confirmed but looks like an
 * access provider's automatic name for an end-user or pool address — the IP's digits in the
 * host part, or access-network words. Pure; a signal for its own action, never a DNS failure.
 */
import type { ClientIp } from './ip.js';

export type GenericLevel = 'conservative' | 'aggressive';
export const GENERIC_LEVELS: readonly GenericLevel[] = ['conservative', 'aggressive'];

/** Words that name an access network. Conservative: unambiguous ones. */
const STRONG_KEYWORDS = [
  'dyn', 'dynamic', 'dynip', 'pool', 'dhcp', 'dsl', 'adsl', 'vdsl', 'xdsl', 'sdsl', 'ppp', 'pppoe', 'cable', 'cpe',
  'customer', 'cust', 'client', 'clients', 'dialup', 'dial', 'broadband', 'bband', 'dip', 'dialin', 'modem',
];
/** Aggressive adds words that are common in end-user names but also seen on servers. */
const WEAK_KEYWORDS = [
  'ip', 'host', 'user', 'users', 'res', 'resnet', 'home', 'nat', 'wlan', 'wifi', 'mobile', 'gprs', 'lte', '3g', '4g', '5g',
  'fiber', 'fibre', 'ftth', 'fttx', 'catv', 'wireless', 'subscriber', 'sub', 'access', 'hsd', 'cm', 'vpn', 'guest',
];
/** A host part that says it is a mail server, or a statically assigned address, is not generic. */
const EXEMPT_WORDS = ['mail', 'mx', 'smtp', 'static', 'mta', 'relay', 'out', 'outbound', 'mailout', 'smtpout', 'mx1', 'mx2'];

/** Address forms already built, per parsed client (the daemon reuses one ClientIp per address). */
const formsByClient = new WeakMap<ClientIp, { level: GenericLevel; forms: readonly string[] }>();

/** How the client address's digits appear in provider names (remembered per client). */
function addressForms(ip: ClientIp, level: GenericLevel): readonly string[] {
  const known = formsByClient.get(ip);
  if (known?.level === level) return known.forms;
  const forms = buildAddressForms(ip, level);
  formsByClient.set(ip, { level, forms });
  return forms;
}

function buildAddressForms(ip: ClientIp, level: GenericLevel): string[] {
  if (ip.family === 4) {
    const octets = ip.text.split('.');
    const reversed = [...octets].reverse();
    const padded = octets.map((octet) => octet.padStart(3, '0'));
    const hex = octets.map((octet) => Number(octet).toString(16).padStart(2, '0')).join('');
    const forms = [
      octets.join('-'), octets.join('.'), octets.join('_'), octets.join(''),
      reversed.join('-'), reversed.join('.'), reversed.join('_'), reversed.join(''),
      padded.join('-'), padded.join('.'), padded.join(''),
      hex,
    ];
    if (level === 'aggressive') forms.push(octets.slice(2).join('-'), reversed.slice(0, 2).join('-'), octets.slice(1).join('-'));
    return forms;
  }
  const parsed = ip.parsed as { toNormalizedString(): string; toFixedLengthString?: () => string };
  const full = (parsed.toFixedLengthString?.() ?? parsed.toNormalizedString()).replace(/:/g, '');
  const nibbles = full.split('');
  const forms = [full, nibbles.join('.'), [...nibbles].reverse().join('.'), full.slice(16), ip.text.replace(/:/g, '-')];
  if (level === 'aggressive') forms.push(full.slice(24));
  return forms;
}

export interface GenericSignal {
  readonly reason: 'address in name' | 'access-network word';
  readonly detail: string;
}

/**
 * Whether a (forward-confirmed) PTR name looks generic. Only the host part is examined: the
 * labels before the last two, so a provider's own domain (`dsl.example.net` as the zone) does
 * not count as evidence on its own.
 */
export function genericSignal(name: string, ip: ClientIp, level: GenericLevel): GenericSignal | undefined {
  const labels = name.toLowerCase().split('.');
  const hostPart = labels.slice(0, Math.max(1, labels.length - 2));
  const words = hostPart.flatMap((label) => label.split(/[-_]/)).filter((word) => word !== '');
  const first = hostPart[0] ?? '';
  const firstWords = first.split(/[-_]/);
  if (firstWords.some((word) => EXEMPT_WORDS.includes(word.replace(/\d+$/, '')))) return undefined;
  const hostText = hostPart.join('.');
  const shortestForm = level === 'aggressive' ? 3 : 7;
  // A host part shorter than any form that counts cannot hold one: most server names
  // (mail, mx1, smtp-out) need no address forms built at all.
  if (hostText.length >= shortestForm) {
    for (const form of addressForms(ip, level)) {
      if (form.length >= shortestForm && hostText.includes(form)) return { reason: 'address in name', detail: form };
    }
  }
  const keywords = level === 'aggressive' ? [...STRONG_KEYWORDS, ...WEAK_KEYWORDS] : STRONG_KEYWORDS;
  for (const word of words) {
    const bare = word.replace(/\d+$/, '');
    if (keywords.includes(word) || keywords.includes(bare)) return { reason: 'access-network word', detail: word };
  }
  if (level === 'aggressive') {
    const digits = first.replace(/[^0-9]/g, '').length;
    if (first.length >= 6 && digits * 2 >= first.length) return { reason: 'address in name', detail: first };
  }
  return undefined;
}
