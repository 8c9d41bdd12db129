/**
 * The throttling arithmetic (issue 27, src/judge/throttle.ts): GCRA's decisions, its bound over
 * arbitrary arrivals, and the network a client is throttled as.
 */
import fc from 'fast-check';
import t from 'tap';
import { gcraOutcome, gcraParams, gcraTake, remainingAt, throttleKey } from '../../src/judge/throttle.js';
import { parseClientIp, type ClientIp } from '../../src/util/ip.js';
import { params } from '../helpers/gcra.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 0, 1);

function ip(text: string): ClientIp {
  const parsed = parseClientIp(text);
  if (!parsed) throw new Error(`not an address: ${text}`);
  return parsed;
}

t.test('settings: whole numbers, at least one, at most one event per millisecond', async (t) => {
  t.same(gcraParams(20, HOUR, 5), { emissionMs: 180_000, burst: 5 });
  t.same(gcraParams(7, HOUR, 1), { emissionMs: 514_286, burst: 1 }, 'rounded up: never more than configured');
  t.same(gcraParams(1000, 1000, 1), { emissionMs: 1, burst: 1 });
  for (const [rate, period, burst] of [[0, HOUR, 1], [1.5, HOUR, 1], [20, 0, 1], [20, HOUR, 0], [20, HOUR, 2.5], [1001, 1000, 1], [Number.NaN, HOUR, 1], [1, Number.MAX_SAFE_INTEGER, 10]] as const) {
    t.type(gcraParams(rate, period, burst), 'string', `${rate}/${period} burst ${burst} refused`);
  }
});

t.test("the issue's new user: 3/hour, burst 1 — the first passes, the next waits 20 minutes", async (t) => {
  const p = params(3, HOUR, 1);
  const first = gcraTake(p, undefined, NOW);
  t.same(first, { allowed: true, tat: NOW + 1_200_000, remaining: 0, retryAfterMs: 1_200_000 });
  const second = gcraTake(p, first.tat, NOW + 1000);
  t.same(second, { allowed: false, tat: first.tat, remaining: 0, retryAfterMs: 1_199_000 });
  t.notOk(gcraTake(p, first.tat, NOW + 1_199_999).allowed, 'one millisecond early');
  t.ok(gcraTake(p, first.tat, NOW + 1_200_000).allowed, 'exactly on time');
});

t.test('burst: that many pass at once, the budget counts down, then the rate rules', async (t) => {
  const p = params(20, HOUR, 5);
  let tat: number | undefined;
  const remaining: number[] = [];
  for (let i = 0; i < 5; i++) {
    const decision = gcraTake(p, tat, NOW);
    t.ok(decision.allowed);
    remaining.push(decision.remaining);
    tat = decision.tat;
  }
  t.same(remaining, [4, 3, 2, 1, 0]);
  const sixth = gcraTake(p, tat, NOW);
  t.notOk(sixth.allowed);
  t.equal(sixth.retryAfterMs, 180_000);
  t.ok(gcraTake(p, tat, NOW + 180_000).allowed, 'one more per emission interval');
  t.equal(remainingAt(p, tat ?? 0, NOW + 5 * 180_000), 5, 'at rest again after burst × T');
});

t.test('a stored TAT in the past is the same as none (a store may drop it)', async (t) => {
  const p = params(20, HOUR, 3);
  t.same(gcraTake(p, NOW - 1, NOW), gcraTake(p, undefined, NOW));
  t.same(gcraTake(p, NOW, NOW), gcraTake(p, undefined, NOW));
});

t.test('a clock stepping back never lets more through', async (t) => {
  const p = params(60, HOUR, 2);
  let tat = gcraTake(p, undefined, NOW).tat;
  tat = gcraTake(p, tat, NOW).tat;
  t.notOk(gcraTake(p, tat, NOW - 30_000).allowed, 'an hour of budget is not refilled by going back');
  t.notOk(gcraTake(p, tat, NOW - HOUR).allowed);
});

t.test('gcraOutcome rebuilds what gcraTake answered from the allowed flag and the TAT (the Redis script answers just those)', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 10 }), fc.option(fc.integer({ min: -HOUR, max: HOUR })), fc.integer({ min: 0, max: 10 * HOUR }), (rate, burst, offset, at) => {
      const p = params(rate, HOUR, burst);
      const decision = gcraTake(p, offset === null ? undefined : NOW + offset, NOW + at);
      t.same(gcraOutcome(p, decision.allowed, decision.tat, NOW + at), decision);
    }),
  );
});

/**
 * Times in ms from NOW, in order: gaps of nothing (bursts), of a few ms, of up to half an hour, so
 * arrivals land just before and just after the moments the budget comes back.
 */
const arrivals = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: HOUR / 2 })), { minLength: 1, maxLength: 300, size: 'max' })
  .map((gaps) => {
    let time = 0;
    return gaps.map((gap) => (time += gap));
  });
const settings = fc.record({ rate: fc.integer({ min: 1, max: 120 }), period: fc.constantFrom(60_000, HOUR, 86_400_000), burst: fc.integer({ min: 1, max: 20 }) });

t.test('over any arrival sequence, at most burst + rate × elapsed / period pass in any span', async (t) => {
  fc.assert(
    fc.property(settings, arrivals, ({ rate, period, burst }, times) => {
      const p = params(rate, period, burst);
      let tat: number | undefined;
      const passed: number[] = [];
      for (const time of times) {
        const decision = gcraTake(p, tat, NOW + time);
        tat = decision.tat;
        if (decision.allowed) passed.push(time);
      }
      // Every span from one passed event to a later one: exact in integers with the rounded-up interval…
      for (let i = 0; i < passed.length; i++) {
        for (let j = i; j < passed.length; j++) {
          const count = j - i + 1;
          const elapsed = (passed[j] ?? 0) - (passed[i] ?? 0);
          if (count > burst + Math.floor(elapsed / p.emissionMs)) return false;
          // …and so within the configured rate too.
          if (count > burst + (rate * elapsed) / period) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('300 sequences of up to 300 arrivals');
});

t.test('and no stricter than configured: an event is refused only while the budget is spent, and retry-after is exact', async (t) => {
  fc.assert(
    fc.property(settings, arrivals, ({ rate, period, burst }, times) => {
      const p = params(rate, period, burst);
      let tat: number | undefined;
      for (const time of times) {
        const now = NOW + time;
        const decision = gcraTake(p, tat, now);
        if (!decision.allowed) {
          // Refused: the key is not at rest, and it would pass exactly retryAfterMs later.
          if (remainingAt(p, tat ?? now, now) !== 0) return false;
          if (gcraTake(p, tat, now + decision.retryAfterMs - 1).allowed) return false;
          if (!gcraTake(p, tat, now + decision.retryAfterMs).allowed) return false;
        } else if (decision.remaining !== remainingAt(p, decision.tat, now)) return false;
        tat = decision.tat;
      }
      // A key left alone for burst intervals has its whole burst again.
      const rested = NOW + (times.at(-1) ?? 0) + burst * p.emissionMs;
      return remainingAt(p, tat ?? rested, rested) === burst;
    }),
    { numRuns: 300 },
  );
  t.pass('300 sequences of up to 300 arrivals');
});

t.test('the budget left is what passes: remaining + 1 takes at the same moment, the last refused', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: HOUR }), (rate, burst, offset) => {
      const p = params(rate, HOUR, burst);
      let decision = gcraTake(p, NOW + offset, NOW);
      if (!decision.allowed) return decision.remaining === 0;
      const expected = decision.remaining;
      for (let i = 0; i < expected; i++) {
        decision = gcraTake(p, decision.tat, NOW);
        if (!decision.allowed) return false;
      }
      return !gcraTake(p, decision.tat, NOW).allowed;
    }),
  );
});

t.test('the key: IPv4 /24 and IPv6 /64 by default, other prefixes as given', async (t) => {
  t.equal(throttleKey(ip('198.51.100.77')), '198.51.100.0/24');
  t.equal(throttleKey(ip('198.51.100.1')), throttleKey(ip('198.51.100.254')), 'one /24, one key');
  t.not(throttleKey(ip('198.51.100.1')), throttleKey(ip('198.51.101.1')));
  t.equal(throttleKey(ip('::ffff:198.51.100.9')), '198.51.100.0/24', 'an IPv4-mapped client is the IPv4 client');
  t.equal(throttleKey(ip('2001:db8:1:2:a:b:c:d')), '2001:db8:1:2::/64');
  t.equal(throttleKey(ip('2001:DB8:0:0:ffff::1')), '2001:db8::/64', 'RFC 5952 text');
  t.equal(throttleKey(ip('2001:db8:0:1::1')), '2001:db8:0:1::/64');
  t.equal(throttleKey(ip('198.51.100.77'), { ipv4: 32, ipv6: 128 }), '198.51.100.77/32');
  t.equal(throttleKey(ip('2001:db8::77'), { ipv4: 32, ipv6: 128 }), '2001:db8::77/128');
  t.equal(throttleKey(ip('198.51.100.77'), { ipv4: 20, ipv6: 48 }), '198.51.96.0/20');
  t.equal(throttleKey(ip('2001:db8:abcd:1234::1'), { ipv4: 20, ipv6: 48 }), '2001:db8:abcd::/48');
  t.equal(throttleKey(ip('2001:db8:abcd:1234::1'), { ipv4: 20, ipv6: 52 }), '2001:db8:abcd:1000::/52');
  t.equal(throttleKey(ip('203.0.113.5'), { ipv4: 0, ipv6: 0 }), '0.0.0.0/0');
  t.equal(throttleKey(ip('203.0.113.5'), { ipv4: 99, ipv6: 64 }), '203.0.113.5/32', 'clamped');
});

t.test('every address of a network has its key, and the key is the network', async (t) => {
  fc.assert(
    fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), (text, bits) => {
      const client = parseClientIp(text);
      if (!client || client.family !== 6) return true;
      const key = throttleKey(client, { ipv4: 24, ipv6: bits });
      const [base = '', length] = key.split('/');
      const network = parseClientIp(base);
      return length === String(bits) && network !== undefined && client.parsed.match(network.parsed, bits) && throttleKey(network, { ipv4: 24, ipv6: bits }) === key;
    }),
  );
});
