/**
 * addressInName() looks for the client's address in a name's host part without building the forms
 * that cannot be there (src/judge/generic.ts). It must find exactly what looking for every form,
 * in order, finds: the forms as they were first written are the reference here.
 */
import t from 'tap';
import { addressInName, type GenericLevel } from '../../src/judge/generic.js';
import { parseClientIp, type ClientIp } from '../../src/util/ip.js';
import { xorshift32 } from '../helpers/xorshift.js';

/** Every form, in the order they are looked for, built the plain way. */
function referenceForms(ip: ClientIp, level: GenericLevel): string[] {
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
    if (level === 'aggressive') forms.push(octets.slice(1).join('-'));
    return forms;
  }
  const parsed = ip.parsed as unknown as { toFixedLengthString(): string };
  const full = parsed.toFixedLengthString().replace(/:/g, '');
  const nibbles = full.split('');
  const forms = [full, nibbles.join('.'), [...nibbles].reverse().join('.'), full.slice(16), ip.text.replace(/:/g, '-')];
  if (level === 'aggressive') forms.push(full.slice(24));
  return forms;
}

function reference(hostText: string, ip: ClientIp, level: GenericLevel): string | undefined {
  const shortestForm = level === 'aggressive' ? 3 : 7;
  if (hostText.length < shortestForm) return undefined;
  return referenceForms(ip, level).find((form) => form.length >= shortestForm && hostText.includes(form));
}

const next = xorshift32();
const pick = <T>(items: readonly T[]): T => items[next() % items.length] as T;

/** Addresses whose parts collide often with each other and with the digits around them. */
function randomAddress(): ClientIp {
  let text: string;
  if (next() % 2 === 0) {
    const octet = () => String(pick([0, 1, 2, 5, 10, 12, 25, 100, 113, 192, 203, 255, next() % 256]));
    text = [octet(), octet(), octet(), octet()].join('.');
  } else {
    const group = () => pick([0, 0, 0, 1, 0xdb8, 0x2001, 0xffff, 0xa, next() % 0x10000]).toString(16);
    text = Array.from({ length: 8 }, group).join(':');
  }
  const ip = parseClientIp(text);
  if (!ip) throw new Error(`not an address: ${text}`);
  return ip;
}

/** A host part: labels of letters, digits and dashes, often with one of the address's forms inside. */
function randomHost(ip: ClientIp): string {
  const filler = () => {
    let label = '';
    const length = 1 + (next() % 12);
    for (let i = 0; i < length; i++) label += pick('abcdef0123456789-xyz'.split(''));
    return label.replace(/^-+|-+$/g, '') || 'a';
  };
  // Sometimes a form alone: a host part exactly as long as the form.
  if (next() % 8 === 0) return pick(referenceForms(ip, 'aggressive'));
  const labels: string[] = [];
  const count = 1 + (next() % 4);
  for (let i = 0; i < count; i++) labels.push(filler());
  if (next() % 3 !== 0) {
    const form = pick(referenceForms(ip, 'aggressive'));
    // Sometimes only part of a form (a near miss), sometimes the whole of it.
    const cut = next() % 4 === 0 ? form.slice(next() % form.length) : form;
    const at = next() % (labels.length + 1);
    labels.splice(at, 0, `${pick(['', 'x', 'dsl-', 'h'])}${cut}${pick(['', '-1', 'a', '.pool'])}`.replace(/^[._-]+|[._-]+$/g, '') || 'b');
  }
  return labels.join('.').toLowerCase();
}

t.test('finds what looking for every form in order finds', async (t) => {
  const fixed: Array<[string, string]> = [
    ['192.0.2.5', '192-0-2-5'], ['192.0.2.5', '5-2-0-192.dsl'], ['192.0.2.5', 'c0000205'], ['192.0.2.5', 'x192000002005'],
    ['192.0.2.5', '0-2-5'], ['192.0.2.5', 'h0-2-5a'], ['10.0.0.1', '1.0.0.10'], ['10.0.0.1', '0a000001'],
    ['2001:db8::1', '2001-db8--1'], ['2001:db8::1', '20010db8000000000000000000000001'], ['2001:db8::1', '0000000000000001'],
    ['2001:db8::1', '00000001'], ['2001:db8::1', 'a'.repeat(70)], ['::1', 'x--1'], ['::1', 'abcde'], ['::a', 'mx-2'], ['1::', 'xyz1--'], ['::', 'host-00000000'],
    // Host parts exactly one form long: the length checks' edges.
    ['2001:db8::1', `1.0.0.0.${'0.'.repeat(20)}8.b.d.0.1.0.0.2`], ['2001:db8::1', `2.0.0.1.0.d.b.8.${'0.'.repeat(20)}0.0.0.1`],
    ['2001:db8::1', '20010db8000000000000000000000001'], ['203.0.113.5', 'cb007105'], ['203.0.113.5', 'cb00710'],
  ];
  for (const [address, host] of fixed) {
    const ip = parseClientIp(address)!;
    for (const level of ['conservative', 'aggressive'] as const) {
      t.equal(addressInName(`${host}.example.com`, ip, level), reference(host, ip, level), `${address} in ${host} (${level})`);
    }
  }
  let disagreements = 0;
  let found = 0;
  for (let i = 0; i < 60_000; i++) {
    const ip = randomAddress();
    const host = randomHost(ip);
    for (const level of ['conservative', 'aggressive'] as const) {
      const expected = reference(host, ip, level);
      if (expected !== undefined) found++;
      if (addressInName(`${host}.example.com`, ip, level) !== expected) disagreements++;
    }
  }
  t.equal(disagreements, 0, '60,000 random host parts, both levels');
  // The random host parts must exercise both answers, or the agreement says little.
  t.ok(found > 20_000 && found < 100_000, `a form found in ${found} of 120,000 checks (60,000 host parts, both levels)`);
});
