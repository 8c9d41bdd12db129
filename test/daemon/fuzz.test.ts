/**
 * Fuzzing the protocol: generated and mutated requests into the codec and into the live
 * server. Nothing may throw or crash, and every well-formed request among the inputs must still
 * get its correct answer. FUZZ_RUNS scales the run (`npm run fuzz` does a million codec inputs
 * and a hundred thousand live-server connections; `npm test` a short run).
 */
import fc from 'fast-check';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { LIMITS } from '../../src/config/limits.js';
import { silentLogger } from '../../src/log/logger.js';
import { PolicyDecoder, type DecodeEvent } from '../../src/protocol/codec.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

const CODEC_RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const LIVE_RUNS = Math.max(200, Math.floor(CODEC_RUNS / 10));

const attributeName = fc.stringMatching(/^[a-z_]{1,24}$/);
const attributeValue = fc.string({ unit: fc.constantFrom(...'abcxyz019.-_@=:[] '.split('')), maxLength: 40 });
const request = fc.dictionary(attributeName, attributeValue, { minKeys: 1, maxKeys: 12 });

function encode(attributes: Record<string, string>): string {
  return `${Object.entries(attributes)
    .map(([name, value]) => `${name}=${value}`)
    .join('\n')}\n\n`;
}

/** Split bytes at the given fractions. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => Math.floor(cut * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(last, point));
    last = point;
  }
  chunks.push(bytes.subarray(last));
  return chunks;
}

/** A mutation of well-formed bytes: flip, insert, delete, duplicate, truncate. */
const mutated = fc
  .tuple(fc.array(request, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 4 })), { maxLength: 8 }))
  .map(([requests, edits]) => {
    const bytes = [...Buffer.from(requests.map(encode).join(''))];
    for (const [position, byte, kind] of edits) {
      const at = bytes.length === 0 ? 0 : position % bytes.length;
      if (kind === 0) bytes[at] = byte;
      else if (kind === 1) bytes.splice(at, 0, byte);
      else if (kind === 2) bytes.splice(at, 1);
      else if (kind === 3) bytes.splice(at, 0, ...bytes.slice(at, at + 16));
      else bytes.length = at;
    }
    return Buffer.from(bytes);
  });

const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)),
  mutated,
  fc.integer({ min: 1, max: 4 * LIMITS.maxLineBytes }).map((size) => Buffer.from(`helo_name=${'x'.repeat(size)}\n\n`)),
  fc.integer({ min: 1, max: 5000 }).map((count) => Buffer.from(`${Array.from({ length: count }, (_, i) => `a${i}=${i}`).join('\n')}\n\n`)),
  fc.constantFrom('=\n\n', '==\n\n', 'a==b\n\n', '\n', '\r\n\r\n', 'request=smtpd_access_policy', '\x00=\x00\n\n').map((text) => Buffer.from(text)),
);

t.test(`codec: well-formed requests decode identically at any split (${CODEC_RUNS} runs)`, async (t) => {
  fc.assert(
    fc.property(fc.array(request, { minLength: 1, maxLength: 4 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }), fc.boolean(), (requests, cuts, crlf) => {
      let text = requests.map(encode).join('');
      if (crlf) text = text.replace(/\n/g, '\r\n');
      const decoder = new PolicyDecoder();
      const events = split(Buffer.from(text), cuts).flatMap((chunk) => decoder.push(chunk));
      const decoded = events.map((event) => (event.kind === 'request' ? Object.fromEntries(event.attributes) : event));
      return JSON.stringify(decoded) === JSON.stringify(requests.map((item) => ({ ...item })));
    }),
    { numRuns: CODEC_RUNS },
  );
  t.pass('no counterexample');
});

t.test(`codec: hostile input never throws and stays bounded (${CODEC_RUNS} runs)`, async (t) => {
  const before = process.memoryUsage().heapUsed;
  fc.assert(
    fc.property(hostile, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }), (bytes, cuts) => {
      const decoder = new PolicyDecoder();
      const events: DecodeEvent[] = split(bytes, cuts).flatMap((chunk) => decoder.push(chunk));
      const troubles = events.filter((event) => event.kind === 'trouble');
      if (troubles.length > 1) return false;
      if (troubles.length === 1 && events[events.length - 1]?.kind !== 'trouble') return false;
      return events.every((event) => event.kind === 'trouble' || [...event.attributes].every(([name]) => name.length > 0 && !name.includes('\n')));
    }),
    { numRuns: CODEC_RUNS },
  );
  global.gc?.();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 256 * 1024 * 1024, `heap grew ${Math.round(grown / 1024 / 1024)} MiB over the run`);
});

t.test(`live server: hostile connections never disturb correct answers (${LIVE_RUNS} connections)`, async (t) => {
  const resolver = zoneResolver({
    ptr: { '5.113.0.203.in-addr.arpa': ['mail.example.com'], '6.113.0.203.in-addr.arpa': ['wrong.example.com'] },
    a: { 'mail.example.com': ['203.0.113.5'], 'wrong.example.com': ['198.51.100.1'] },
  });
  const daemon = await startDaemon({
    config: parseConfig('listen = 127.0.0.1:0\nmode = strict\nmax_connections = 100000\n', 'fuzz.conf'),
    logger: silentLogger(),
    resolver,
    requestReadTimeoutMs: 200,
  });
  t.teardown(() => daemon.close());
  const port = daemon.port ?? 0;
  const witness = await PolicyClient.connect({ port });
  t.teardown(() => witness.close());
  const expected: Record<string, string> = {
    '203.0.113.5': 'DUNNO',
    '203.0.113.6': '550 5.7.25 cannot find your hostname, [203.0.113.6]',
    '203.0.113.7': '550 5.7.25 cannot find your hostname, [203.0.113.7]',
  };
  let wellFormed = 0;
  let hostileCount = 0;
  const rssBefore = process.memoryUsage().rss;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        { weight: 3, arbitrary: hostile.map((bytes) => ({ kind: 'hostile' as const, bytes })) },
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.constantFrom(...Object.keys(expected)), request, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }))
            .map(([address, extra, cuts]) => ({ kind: 'good' as const, address, extra, cuts })),
        },
      ),
      async (input) => {
        const client = await PolicyClient.connect({ port });
        try {
          if (input.kind === 'hostile') {
            hostileCount++;
            await client.send(input.bytes);
            // Either closed without reply (trouble) or still waiting for more; both are fine.
            return true;
          }
          wellFormed++;
          const attributes = { ...input.extra, request: 'smtpd_access_policy', client_address: input.address, instance: '', recipient: 'bob@example.org', sasl_username: '' };
          for (const chunk of split(Buffer.from(encode(attributes)), input.cuts)) await client.send(chunk);
          return (await client.reply(5000)) === expected[input.address];
        } finally {
          client.close();
        }
      },
    ),
    { numRuns: LIVE_RUNS },
  );
  for (const [address, reply] of Object.entries(expected)) {
    t.equal(await witness.ask({ client_address: address }), reply, `the witness connection still gets ${address} right`);
  }
  t.ok(wellFormed > 0 && hostileCount > 0, `${hostileCount} hostile and ${wellFormed} well-formed connections`);
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  t.ok(rssGrowth < 512 * 1024 * 1024, `RSS grew ${Math.round(rssGrowth / 1024 / 1024)} MiB`);
  t.comment(`fuzz: ${CODEC_RUNS} + ${CODEC_RUNS} codec inputs, ${LIVE_RUNS} live connections (${hostileCount} hostile, ${wellFormed} well-formed)`);
});
