/** The DNS layer's own guarantees: every query ends as an outcome, within its deadline. */
import t from 'tap';
import { classifyDnsError, settleQuery, withOverallDeadline } from '../src/dns.js';

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
