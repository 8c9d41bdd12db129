import t from 'tap';
import { fullCollection } from '../../src/dns/channels.js';
import { LookupCache, type CacheSettings, type LookupListener } from '../../src/dns/cache.js';
import { directLookups, type AddressOutcome, type IprevDns, type PtrOutcome } from '../../src/dns/resolver.js';
import { parseClientIp } from '../../src/util/ip.js';
import { lookupIprev } from '../../src/dns/iprev.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

const ARPA = '5.113.0.203.in-addr.arpa';
const SETTINGS: CacheSettings = { size: 100, maxTtlMs: 3_600_000, ptrTtlMs: 900_000, negativeTtlMs: 300_000, temperrorTtlMs: 30_000 };

/**
 * The cache's callback lookups (askPtr / askAddresses, as the cold path asks) as promises, for one
 * request: `allCached()` says whether every answer came from the cache.
 */
function forRequest(cache: LookupCache): { dns: IprevDns; allCached: () => boolean } {
  let everyLookupCached = true;
  const asked = (ask: (listener: LookupListener) => PtrOutcome | AddressOutcome | undefined) =>
    new Promise<PtrOutcome | AddressOutcome>((resolve) => {
      const cached = ask({ settled: resolve });
      if (cached !== undefined) resolve(cached);
      else everyLookupCached = false;
    });
  return {
    dns: {
      lookupPtr: (name) => asked((listener) => cache.askPtr(name, listener, 0)) as Promise<PtrOutcome>,
      lookupAddresses: (name, family) => asked((listener) => cache.askAddresses(name, family, listener, 0)) as Promise<AddressOutcome>,
    },
    allCached: () => everyLookupCached,
  };
}

function fakeClock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

t.test('concurrent misses share one query each; a second burst is all hits', async (t) => {
  const resolver = zoneResolver({
    ptr: { [ARPA]: { delayMs: 20, answer: ['mail.example.com'] } },
    a: { 'mail.example.com': { delayMs: 20, answer: ['203.0.113.5'] } },
  });
  const cache = new LookupCache(directLookups(resolver, 1000), SETTINGS);
  const ip = parseClientIp('203.0.113.5')!;
  const burst = async () =>
    Promise.all(
      Array.from({ length: 100 }, async () => {
        const lookups = forRequest(cache);
        const result = await lookupIprev(ip, lookups.dns, 10);
        return { result: result.result, cached: lookups.allCached() };
      }),
    );
  const first = await burst();
  t.ok(first.every((item) => item.result === 'pass'));
  t.same(resolver.queries, [`PTR ${ARPA}`, 'A mail.example.com'], 'exactly one PTR and one A query');
  t.equal(cache.stats.misses, 2);
  t.equal(cache.stats.inflightJoins, 198);
  const second = await burst();
  t.equal(resolver.queries.length, 2, 'the second burst sends nothing');
  t.ok(second.every((item) => item.cached));
  t.notOk(first[0]?.cached);
});

t.test('TTLs: record TTL under cache_max_ttl, ptr_ttl, negative_ttl, temperror_ttl', async (t) => {
  const clock = fakeClock();
  const resolver = zoneResolver(
    {
      ptr: { [ARPA]: ['mail.example.com'], 'temp.in-addr.arpa': { error: 'ESERVFAIL' } },
      a: { 'mail.example.com': ['203.0.113.5'] },
    },
    60,
  );
  const cache = new LookupCache(directLookups(resolver, 1000), SETTINGS, clock);
  const lookups = () => forRequest(cache).dns;
  const count = (query: string) => resolver.queries.filter((item) => item === query).length;

  await lookups().lookupAddresses('mail.example.com', 4);
  clock.advance(59_000);
  await lookups().lookupAddresses('mail.example.com', 4);
  t.equal(count('A mail.example.com'), 1, 'kept within its 60 s record TTL');
  clock.advance(2_000);
  await lookups().lookupAddresses('mail.example.com', 4);
  t.equal(count('A mail.example.com'), 2, 'asked again after the record TTL');

  await lookups().lookupPtr(ARPA);
  clock.advance(899_000);
  await lookups().lookupPtr(ARPA);
  t.equal(count(`PTR ${ARPA}`), 1, 'PTR kept ptr_ttl');
  clock.advance(2_000);
  await lookups().lookupPtr(ARPA);
  t.equal(count(`PTR ${ARPA}`), 2);

  await lookups().lookupPtr('nx.in-addr.arpa');
  clock.advance(299_000);
  await lookups().lookupPtr('nx.in-addr.arpa');
  t.equal(count('PTR nx.in-addr.arpa'), 1, 'NXDOMAIN kept negative_ttl');
  clock.advance(2_000);
  await lookups().lookupPtr('nx.in-addr.arpa');
  t.equal(count('PTR nx.in-addr.arpa'), 2);

  await lookups().lookupPtr('temp.in-addr.arpa');
  clock.advance(29_000);
  await lookups().lookupPtr('temp.in-addr.arpa');
  t.equal(count('PTR temp.in-addr.arpa'), 1, 'a temporary failure is kept temperror_ttl so a dead resolver is not hammered');
  clock.advance(2_000);
  await lookups().lookupPtr('temp.in-addr.arpa');
  t.equal(count('PTR temp.in-addr.arpa'), 2);
});

t.test('cache_max_ttl bounds long record TTLs', async (t) => {
  const clock = fakeClock();
  const resolver = zoneResolver({ a: { 'mail.example.com': ['203.0.113.5'] } }, 86_400);
  const cache = new LookupCache(directLookups(resolver, 1000), { ...SETTINGS, maxTtlMs: 600_000 }, clock);
  await forRequest(cache).dns.lookupAddresses('mail.example.com', 4);
  clock.advance(601_000);
  await forRequest(cache).dns.lookupAddresses('mail.example.com', 4);
  t.equal(resolver.queries.length, 2);
});

t.test('cache_size bounds the entries (LRU)', async (t) => {
  const resolver = zoneResolver({});
  const cache = new LookupCache(directLookups(resolver, 1000), { ...SETTINGS, size: 10 });
  for (let i = 0; i < 50; i++) await forRequest(cache).dns.lookupPtr(`${i}.in-addr.arpa`);
  t.equal(cache.size, 10);
});

t.test('an answer that arrives after clear() is not kept; the next request asks again', async (t) => {
  const resolver = zoneResolver({ ptr: { [ARPA]: { delayMs: 30, answer: ['mail.example.com'] } } });
  const cache = new LookupCache(directLookups(resolver, 1000), SETTINGS);
  const pending = forRequest(cache).dns.lookupPtr(ARPA);
  cache.clear();
  t.match(await pending, { kind: 'answer', records: ['mail.example.com'] }, 'the request that asked still gets its answer');
  t.equal(cache.size, 0, 'but the cleared cache does not keep it');
  await forRequest(cache).dns.lookupPtr(ARPA);
  t.equal(resolver.queries.length, 2, 'asked again after the clear');
  t.equal(cache.size, 1);
});

t.test('an upstream that throws instead of answering is a temporary failure, not a stuck lookup', async (t) => {
  const cache = new LookupCache(
    {
      lookupPtr: () => Promise.reject(new Error('bug')),
      lookupAddresses: () => Promise.reject(new Error('bug')),
    },
    SETTINGS,
  );
  t.same(await forRequest(cache).dns.lookupPtr(ARPA), { kind: 'temporary', code: 'EINTERNAL' });
  t.same(await forRequest(cache).dns.lookupAddresses('mail.example.com', 4), { kind: 'temporary', code: 'EINTERNAL' });
  t.equal(cache.size, 0, 'nothing cached');
});

t.test('a kept key does not keep the text its name was cut from alive', async (t) => {
  const gc = fullCollection() as () => void;
  const cache = new LookupCache(
    {
      lookupPtr: async () => ({ kind: 'not_found', code: 'ENOTFOUND' }),
      lookupAddresses: async () => ({ kind: 'not_found', code: 'ENOTFOUND' }),
    },
    SETTINGS,
  );
  gc();
  const before = process.memoryUsage().heapUsed;
  // 40 reads of 1 MiB each, a HELO name cut out of each and asked: the cache keeps 40 keys, not the reads.
  for (let i = 0; i < 40; i++) {
    const read = `helo_name=relay${i}.example.com\n${'.'.repeat(1 << 20)}`;
    await forRequest(cache).dns.lookupAddresses(read.slice('helo_name='.length, read.indexOf('\n')), 4);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.equal(cache.size, 40);
  t.ok(grown < 8 << 20, `heap grew by ${(grown / 1048576).toFixed(1)} MiB for 40 cached names (the reads were 40 MiB)`);
});
