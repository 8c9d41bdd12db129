/** The DNS layer's own guarantees: every query ends as an outcome, within its deadline. */
import t from 'tap';
import { caresCachesQueries, classifyDnsError, directLookups, queriesInFlight, type DnsCallback } from '../../src/dns/resolver.js';
import { LIMITS } from '../../src/config/limits.js';

t.test('only answers that say the record does not exist are permanent', async (t) => {
  for (const code of ['ENOTFOUND', 'ENODATA', 'ENONAME', 'EBADNAME']) t.same(classifyDnsError({ code }), { kind: 'not_found', code });
  for (const code of ['ESERVFAIL', 'EREFUSED', 'ETIMEOUT', 'ECONNREFUSED', 'EBADRESP', 'EWHATEVER']) t.same(classifyDnsError({ code }), { kind: 'temporary', code });
  t.same(classifyDnsError(new Error('no code')), { kind: 'temporary', code: 'EUNKNOWN' });
  t.same(classifyDnsError(undefined), { kind: 'temporary', code: 'EUNKNOWN' });
});

t.test('a lookup: an answer, a rejection, a throw and silence each end as an outcome', async (t) => {
  const never = () => new Promise<never>(() => undefined);
  const ptr = (resolvePtr: () => Promise<string[]>, deadlineMs: number) =>
    directLookups({ resolvePtr, resolve4: never, resolve6: never }, deadlineMs).lookupPtr('2.0.192.in-addr.arpa');
  t.same(await ptr(async () => ['a.example'], 1000), { kind: 'answer', records: ['a.example'] });
  t.same(await ptr(() => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 1000), { kind: 'not_found', code: 'ENOTFOUND' });
  t.same(
    await ptr(() => {
      throw Object.assign(new Error('bad name'), { code: 'EBADNAME' });
    }, 1000),
    { kind: 'not_found', code: 'EBADNAME' },
  );
  const started = Date.now();
  t.same(await ptr(never, 50), { kind: 'temporary', code: 'ETIMEOUT' });
  t.ok(Date.now() - started < 1000, 'the deadline, not the query, ended it');
});

t.test('directLookups: each query is observed once, however late its answer, and shaped in the same promise', async (t) => {
  const seen: string[] = [];
  let answerLate: (value: Array<{ address: string; ttl: number }>) => void = () => undefined;
  const resolver = {
    resolvePtr: async () => ['mail.example.com'],
    resolve4: () => new Promise<Array<{ address: string; ttl: number }>>((resolve) => (answerLate = resolve)),
    resolve6: async () => [
      { address: '2001:db8::25', ttl: 300 },
      { address: '2001:db8::26', ttl: 60 },
    ],
  };
  const dns = directLookups(resolver, 50, (type, outcome) => seen.push(`${type} ${outcome}`));
  t.same(await dns.lookupPtr('x.ip6.arpa'), { kind: 'answer', records: ['mail.example.com'] });
  t.same(await dns.lookupAddresses('mail.example.com', 6), { kind: 'answer', records: ['2001:db8::25', '2001:db8::26'], ttl: 60 });
  t.same(await dns.lookupAddresses('mail.example.com', 4), { kind: 'temporary', code: 'ETIMEOUT' });
  answerLate([{ address: '192.0.2.25', ttl: 300 }]);
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(seen, ['ptr answer', 'aaaa answer', 'a temporary'], 'the late answer is not observed again');
});

t.test('caresCachesQueries: only a shared c-ares of 1.31 or later keeps its own query cache', async (t) => {
  t.ok(caresCachesQueries('1.34.5', true), "Debian 13's nodejs");
  t.ok(caresCachesQueries('1.34.5', 'true'));
  t.ok(caresCachesQueries('2.0.0', true));
  t.notOk(caresCachesQueries('1.34.6', false), "upstream Node's bundled c-ares");
  t.notOk(caresCachesQueries('1.18.1', true), "Debian 12's system c-ares");
  t.notOk(caresCachesQueries('', true), 'no version known');
});

t.test('sendPtr/sendAddresses: each query ends once, by its answer, at once on a throw, or past its deadline', async (t) => {
  const seen: string[] = [];
  let answerLate: DnsCallback<Array<{ address: string; ttl: number }>> = () => undefined;
  const resolver = {
    resolvePtr: async () => [],
    resolve4: async () => [],
    resolve6: async () => [],
    callbacks: {
      resolvePtr: (name: string, done: DnsCallback<string[]>) => {
        if (name === 'bad') throw Object.assign(new Error('bad name'), { code: 'EBADNAME' });
        setImmediate(() => done(null, ['mail.example.com', 'MAIL.example.com.']));
      },
      resolve4: (_name: string, _options: { ttl: true }, done: DnsCallback<Array<{ address: string; ttl: number }>>) => (answerLate = done),
      resolve6: (_name: string, _options: { ttl: true }, done: DnsCallback<Array<{ address: string; ttl: number }>>) =>
        setImmediate(() => done(Object.assign(new Error('no data'), { code: 'ENODATA' }), [])),
    },
  };
  const dns = directLookups(resolver, 50, (type, outcome) => seen.push(`${type} ${outcome}`));
  const ask = <T>(send: (listener: { answered(outcome: T): void }) => void): Promise<T> => new Promise((answered) => send({ answered }));
  t.same(await ask((l) => dns.sendPtr('x.ip6.arpa', l)), { kind: 'answer', records: ['mail.example.com', 'mail.example.com'] }, 'kept as keepPtrRecords keeps');
  t.same(await ask((l) => dns.sendPtr('bad', l)), { kind: 'not_found', code: 'EBADNAME' });
  t.same(await ask((l) => dns.sendAddresses('mail.example.com', 6, l)), { kind: 'not_found', code: 'ENODATA' });
  const started = Date.now();
  const before = queriesInFlight();
  const silent = ask((l) => dns.sendAddresses('mail.example.com', 4, l));
  t.equal(queriesInFlight(), before + 1, 'the silent query is in flight');
  t.same(await silent, { kind: 'temporary', code: 'ETIMEOUT' });
  t.ok(Date.now() - started < 50 + 5 * LIMITS.querySweepMs, 'ended by the sweep soon after its deadline');
  answerLate(null, [{ address: '192.0.2.25', ttl: 300 }]);
  t.equal(queriesInFlight(), before, 'counted out when c-ares is done with it');
  t.same(seen, ['ptr answer', 'ptr not_found', 'aaaa not_found', 'a temporary'], 'each observed once; the late answer not again');
});
