import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { AttributeNames, PolicyDecoder, keptAttributes, pickAttributes, type DecodeEvent } from '../../src/protocol/codec.js';
import { encodeReply } from '../../src/protocol/reply.js';

const REQUEST =
  'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=203.0.113.5\n' +
  'client_name=unknown\nreverse_client_name=unknown\nhelo_name=mail.example.com\nsender=a@example.com\n' +
  'recipient=b@example.org\ninstance=1a2b.5f3c.1\nqueue_id=\nsasl_username=\n\n';

function decodeAll(chunks: Buffer[]): DecodeEvent[] {
  const decoder = new PolicyDecoder();
  return chunks.flatMap((chunk) => decoder.push(chunk));
}

function attributesOf(event: DecodeEvent | undefined): Record<string, string> {
  if (!event || event.kind !== 'request') throw new Error(`expected a request, got ${JSON.stringify(event)}`);
  return Object.fromEntries(event.attributes);
}

t.test('a request split at every byte boundary decodes the same', async (t) => {
  const bytes = Buffer.from(REQUEST);
  const whole = attributesOf(decodeAll([bytes])[0]);
  t.equal(whole.client_address, '203.0.113.5');
  t.equal(whole.queue_id, '');
  for (let split = 0; split <= bytes.length; split++) {
    const events = decodeAll([bytes.subarray(0, split), bytes.subarray(split)]);
    t.equal(events.length, 1);
    t.same(attributesOf(events[0]), whole);
  }
  // and one byte at a time
  const single = decodeAll([...bytes].map((byte) => Buffer.from([byte])));
  t.same(attributesOf(single[0]), whole);
});

t.test('pipelined requests decode in order, across any chunking', async (t) => {
  const three = Buffer.from(REQUEST.replace('203.0.113.5', '192.0.2.1') + REQUEST + REQUEST.replace('203.0.113.5', '2001:db8::1'));
  for (const size of [4096, 128, 16, 7, 1]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < three.length; i += size) chunks.push(three.subarray(i, i + size));
    const events = decodeAll(chunks);
    t.same(
      events.map((event) => attributesOf(event).client_address),
      ['192.0.2.1', '203.0.113.5', '2001:db8::1'],
      `chunk size ${size}`,
    );
  }
});

t.test('CRLF line ends are tolerated', async (t) => {
  const events = decodeAll([Buffer.from(REQUEST.replace(/\n/g, '\r\n'))]);
  const attributes = attributesOf(events[0]);
  t.equal(attributes.client_address, '203.0.113.5');
  t.equal(attributes.helo_name, 'mail.example.com');
  t.equal(events.length, 1);
});

t.test('a repeated attribute keeps its last value', async (t) => {
  const events = decodeAll([Buffer.from('request=smtpd_access_policy\nclient_address=192.0.2.1\nclient_address=192.0.2.2\n\n')]);
  t.equal(attributesOf(events[0]).client_address, '192.0.2.2');
});

t.test('a name inside another name or inside a value is not taken for the attribute', async (t) => {
  const first = 'sasl_sender=x\nccert_subject=CN=client_address=192.0.2.99\nreverse_client_name=r.example\nclient_address=192.0.2.1\n\n';
  const second = 'client_address=192.0.2.2\nsender=\nsasl_sender=s@example.com\nx_client_name=no\n\n';
  // One chunk: the second request starts mid-text, the first at its very start.
  const events = decodeAll([Buffer.from(first + second)]);
  t.equal(events.length, 2);
  const [one, two] = events.map((event) => (event.kind === 'request' ? event.attributes : undefined));
  t.equal(one?.get('client_address'), '192.0.2.1');
  t.equal(one?.get('sender'), undefined);
  t.equal(one?.get('client_name'), undefined);
  t.equal(one?.get('sasl_sender'), 'x');
  t.equal(one?.get('ccert_subject'), 'CN=client_address=192.0.2.99');
  t.equal(two?.get('client_address'), '192.0.2.2');
  t.equal(two?.get('sender'), '');
  t.equal(two?.get('sasl_sender'), 's@example.com');
  t.equal(two?.get('client_name'), undefined);
  t.equal(two?.get('sasl_username'), undefined);
});

t.test('picking several attributes in one pass gives what get() gives, on the text and the byte path', async (t) => {
  const names = new AttributeNames(['client_address', 'sender', 'client_name', 'sasl_sender', 'ccert_subject', 'instance', 'helo_name']);
  const text = 'sasl_sender=x\nccert_subject=CN=client_address=192.0.2.99\nreverse_client_name=r.example\nclient_address=192.0.2.1\n' +
    'instance=a.1\ninstance=a.2\nhelo_name=\n\n';
  const whole = decodeAll([Buffer.from(text)]);
  // Split mid-line and with a UTF-8 value: the byte path (a Map) answers.
  const split = decodeAll([Buffer.from(text.slice(0, 20)), Buffer.from(text.slice(20).replace('r.example', 'r\u00e9.example'))]);
  for (const [path, events] of [['text', whole], ['bytes', split]] as const) {
    const event = events[0];
    if (event?.kind !== 'request') throw new Error('expected a request');
    const picked = pickAttributes(event.attributes, names);
    t.same(picked, names.names.map((name) => event.attributes.get(name)), `${path}: same as get()`);
    t.same(picked, ['192.0.2.1', undefined, undefined, 'x', 'CN=client_address=192.0.2.99', 'a.2', ''], `${path}: values`);
  }
});

t.test('values may contain "=" and UTF-8; empty values are kept', async (t) => {
  const events = decodeAll([Buffer.from('request=smtpd_access_policy\nsender=a=b@example.com\nhelo_name=bücher.example\nccert_subject=\n\n')]);
  const attributes = attributesOf(events[0]);
  t.equal(attributes.sender, 'a=b@example.com');
  t.equal(attributes.helo_name, 'bücher.example');
  t.equal(attributes.ccert_subject, '');
});

t.test('broken input is trouble, and the decoder stops there', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['line without =', Buffer.from('garbage\n\n'), /without "="/],
    ['empty attribute name', Buffer.from('=value\n\n'), /empty name/],
    ['empty request', Buffer.from('\n'), /empty request/],
    ['binary bytes', Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x0a]), /without "="/],
    ['oversize line with LF', Buffer.from(`helo_name=${'x'.repeat(LIMITS.maxLineBytes)}\n\n`), /line longer/],
    ['oversize line without LF', Buffer.from(`helo_name=${'x'.repeat(LIMITS.maxLineBytes + 10)}`), /line longer/],
  ];
  for (const [name, input, problem] of cases) {
    const decoder = new PolicyDecoder();
    const events = decoder.push(input);
    t.equal(events.length, 1, name);
    t.equal(events[0]?.kind, 'trouble', name);
    if (events[0]?.kind === 'trouble') t.match(events[0].problem, problem, name);
    t.same(decoder.push(Buffer.from(REQUEST)), [], `${name}: nothing decoded after trouble`);
  }
});

t.test('an oversize line fed byte by byte is caught before it is buffered', async (t) => {
  const decoder = new PolicyDecoder();
  let trouble: DecodeEvent | undefined;
  for (let i = 0; i < LIMITS.maxLineBytes + 100 && !trouble; i++) {
    trouble = decoder.push(Buffer.from('x'))[0];
  }
  t.equal(trouble?.kind, 'trouble');
});

t.test('a request over 64 KiB is trouble even when each line is under the line limit', async (t) => {
  const lines: string[] = [];
  for (let i = 0; lines.join('\n').length < LIMITS.maxRequestBytes + 100; i++) lines.push(`attr${i}=${'v'.repeat(1000)}`);
  const events = decodeAll([Buffer.from(`${lines.join('\n')}\n\n`)]);
  t.equal(events.length, 1);
  t.equal(events[0]?.kind, 'trouble');
  if (events[0]?.kind === 'trouble') t.match(events[0].problem, /request larger/);
});

t.test('requests before the trouble are still delivered', async (t) => {
  const events = decodeAll([Buffer.from(`${REQUEST}garbage\n\n`)]);
  t.same(events.map((event) => event.kind), ['request', 'trouble']);
});

t.test('a half request is reported as partial', async (t) => {
  const decoder = new PolicyDecoder();
  t.equal(decoder.hasPartialRequest, false);
  decoder.push(Buffer.from('request=smtpd_access_policy\nclient_addr'));
  t.equal(decoder.hasPartialRequest, true);
  decoder.push(Buffer.from('ess=192.0.2.1\n\n'));
  t.equal(decoder.hasPartialRequest, false);
});

t.test(`more than ${LIMITS.maxAttributesPerRequest} attributes is trouble, whole or held, ASCII or not`, async (t) => {
  const padded = (count: number, value = '') => `request=smtpd_access_policy\n${Array.from({ length: count }, (_, i) => `k${i}=${value}\n`).join('')}\n`;
  // The request line plus maxAttributesPerRequest - 1 padding lines: at the cap, accepted.
  t.same(decodeAll([Buffer.from(padded(LIMITS.maxAttributesPerRequest - 1))]).map((event) => event.kind), ['request'], 'at the cap');
  for (const value of ['', 'ü']) {
    const over = Buffer.from(padded(LIMITS.maxAttributesPerRequest, value));
    for (const size of [over.length, 100, 7, 1]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < over.length; i += size) chunks.push(over.subarray(i, i + size));
      const events = decodeAll(chunks);
      t.equal(events.length, 1, `value ${JSON.stringify(value)}, chunks of ${size}`);
      if (events[0]?.kind === 'trouble') t.match(events[0].problem, /more than \d+ attributes/);
      else t.fail('expected trouble');
    }
  }
});

t.test('an unfinished request is held as its raw bytes, and only those', async (t) => {
  const decoder = new PolicyDecoder();
  const head = Buffer.from(REQUEST.slice(0, -1));
  t.same(decoder.push(head.subarray(0, 100)), []);
  t.equal(decoder.heldBytes, 100, 'what arrived of the request');
  // A complete request and the start of the next: only the start is held.
  const decoder2 = new PolicyDecoder();
  t.equal(decoder2.push(Buffer.from(REQUEST + REQUEST.slice(0, 30))).length, 1);
  t.equal(decoder2.heldBytes, 30);
  t.same(decoder.push(head.subarray(100)), []);
  t.equal(decoder.heldBytes, head.length);
  t.same(attributesOf(decoder.push(Buffer.from('\n'))[0]).client_address, '203.0.113.5');
  t.equal(decoder.heldBytes, 0, 'nothing held once the request is complete');
  decoder.push(Buffer.from('request=smtpd'));
  decoder.discard();
  t.equal(decoder.heldBytes, 0, 'discard drops what is held');
  t.same(decoder.push(Buffer.from(REQUEST)), [], 'and nothing is decoded after it');
});

t.test('trouble in a held request is found as its lines arrive, not at its end', async (t) => {
  const decoder = new PolicyDecoder();
  t.same(decoder.push(Buffer.from('request=smtpd_access_policy\nclient_')), []);
  const events = decoder.push(Buffer.from('address\n'));
  t.equal(events[0]?.kind, 'trouble');
  t.equal(decoder.heldBytes, 0);
});

t.test('a kept request holds a copy of its own lines only, with the same attributes', async (t) => {
  const events = decodeAll([Buffer.from(REQUEST + REQUEST.replace('203.0.113.5', '192.0.2.9'))]);
  for (const event of events) {
    if (event.kind !== 'request') throw new Error('expected requests');
    const kept = keptAttributes(event.attributes);
    t.same(Object.fromEntries(kept.attributes), Object.fromEntries(event.attributes));
    const own = event === events[1] ? REQUEST.length - ('203.0.113.5'.length - '192.0.2.9'.length) : REQUEST.length;
    t.equal(kept.bytes, own - 1, 'its own lines, without the empty line');
  }
  const utf8 = decodeAll([Buffer.from('request=smtpd_access_policy\nhelo_name=bücher.example\n\n')])[0];
  if (utf8?.kind !== 'request') throw new Error('expected a request');
  t.equal(keptAttributes(utf8.attributes).attributes.get('helo_name'), 'bücher.example', 'the byte path too');
});

t.test('replies are LF-only and refuse line breaks', async (t) => {
  t.equal(encodeReply('DUNNO').toString(), 'action=DUNNO\n\n');
  t.equal(encodeReply('550 5.7.25 cannot find your hostname, [192.0.2.1]').toString(), 'action=550 5.7.25 cannot find your hostname, [192.0.2.1]\n\n');
  t.notMatch(encodeReply('DUNNO').toString(), /\r/);
  t.throws(() => encodeReply('DUNNO\r\nx'));
  t.throws(() => encodeReply(''));
  t.throws(() => encodeReply('caf\u00e9'));
});
