/** The DNS layer's own guarantees: every query ends as an outcome, within its deadline. */
import t from 'tap';
import { classifyDnsError, directLookups, settleQuery, withOverallDeadline } from '../../src/dns/resolver.js';

t.test('only answers that say the record does not exist are permanent', async (t) => {
  for (const code of ['ENOTFOUND', 'ENODATA', 'ENONAME', 'EBADNAME']) t.same(classifyDnsError({ code }), { kind: 'not_found', code });
  for (const code of ['ESERVFAIL', 'EREFUSED', 'ETIMEOUT', 'ECONNREFUSED', 'EBADRESP', 'EWHATEVER']) t.same(classifyDnsError({ code }), { kind: 'temporary', code });
  t.same(classifyDnsError(new Error('no code')), { kind: 'temporary', code: 'EUNKNOWN' });
  t.same(classifyDnsError(undefined), { kind: 'temporary', code: 'EUNKNOWN' });
});

t.test('settleQuery: an answer, a rejection, a throw and silence each end as an outcome', async (t) => {
  t.same(await settleQuery(async () => ['a.example'], 1000), { kind: 'answer', records: ['a.example'] });
  t.same(await settleQuery(() => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 1000), { kind: 'not_found', code: 'ENOTFOUND' });
  t.same(
    await settleQuery(() => {
      throw Object.assign(new Error('bad name'), { code: 'EBADNAME' });
    }, 1000),
    { kind: 'not_found', code: 'EBADNAME' },
  );
  const started = Date.now();
  t.same(await settleQuery(() => new Promise<never>(() => undefined), 50), { kind: 'temporary', code: 'ETIMEOUT' });
  t.ok(Date.now() - started < 1000, 'the deadline, not the query, ended it');
});

t.test('withOverallDeadline bounds every lookup of a request by one timer', async (t) => {
  const never = () => new Promise<never>(() => undefined);
  const bounded = withOverallDeadline({ lookupPtr: never, lookupAddresses: never }, 50);
  const started = Date.now();
  const [ptr, forward] = await Promise.all([bounded.dns.lookupPtr('x.in-addr.arpa'), bounded.dns.lookupAddresses('mail.example.com', 4)]);
  bounded.dispose();
  t.same(ptr, { kind: 'temporary', code: 'ETIMEOUT' });
  t.same(forward, { kind: 'temporary', code: 'ETIMEOUT' });
  t.ok(Date.now() - started < 1000);
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
