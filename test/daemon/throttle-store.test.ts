/**
 * Where throttle budgets live (issue 27): the in-memory store (bounded, exact, expiring), the
 * breaker, the store URL, and the shared store against a real redis-server — shared budgets,
 * Redis killed, paused, restarted, refusing the password, full — answers always within the
 * deadline, one log line each way.
 */
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { checkPasswordFilePath, parseThrottleStore, type ThrottleStoreTarget } from '../../src/config/throttle-store-url.js';
import { Breaker } from '../../src/daemon/throttle-breaker.js';
import { MemoryThrottle } from '../../src/daemon/throttle-memory.js';
import { decisionFromReply } from '../../src/daemon/throttle-script.js';
import { createThrottleStore, MemoryThrottleStore, type ThrottleStore } from '../../src/daemon/throttle-store.js';
import { gcraTake, type GcraParams } from '../../src/judge/throttle.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js';
import { whenAvailable } from '../helpers/requirements.js';
import { collectGarbage } from '../helpers/gc.js';
import { params } from '../helpers/gcra.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 0, 1);

t.test('the store URL: memory, redis://, rediss://, a socket path; a password never in it', async (t) => {
  t.same(parseThrottleStore('memory'), { kind: 'memory' });
  t.same(parseThrottleStore(''), { kind: 'memory' });
  t.same(parseThrottleStore('redis://127.0.0.1'), { kind: 'redis', url: 'redis://127.0.0.1:6379', tls: false, display: 'redis://127.0.0.1:6379' });
  t.same(parseThrottleStore('rediss://policy@redis.example.org:6380/2'), { kind: 'redis', url: 'rediss://policy@redis.example.org:6380/2', tls: true, display: 'rediss://policy@redis.example.org:6380/2' });
  t.match(parseThrottleStore('redis://[::1]:6379'), { kind: 'redis', display: 'redis://[::1]:6379' });
  t.same(parseThrottleStore('/run/redis/redis.sock'), { kind: 'socket', path: '/run/redis/redis.sock', display: 'unix:/run/redis/redis.sock' });
  const problems: Record<string, RegExp> = {
    'redis://:secret@127.0.0.1': /password_file/,
    'redis://user:secret@127.0.0.1': /password_file/,
    'redis://127.0.0.1:99999': /not a URL/,
    'redis://127.0.0.1/x': /database number/,
    'redis://127.0.0.1/0?ssl=1': /query/,
    'http://127.0.0.1': /must be memory/,
    'localhost:6379': /must be memory/,
    'run/redis.sock': /must be memory/,
    [`/${'x'.repeat(120)}`]: /longer than 107 bytes/,
    '/run/redis/': /directory/,
  };
  for (const [text, problem] of Object.entries(problems)) t.match(parseThrottleStore(text), problem, text);
  for (const text of Object.keys(problems)) t.notMatch(String(parseThrottleStore(text)), /secret/, 'the problem does not repeat the password');
  t.equal(checkPasswordFilePath('/etc/fcrdns-policyd/redis.pass'), undefined);
  t.match(checkPasswordFilePath('redis.pass'), /absolute/);
});

t.test('garbage from the script is no verdict', async (t) => {
  const p = params(20, HOUR, 5);
  t.match(decisionFromReply(p, [1, NOW + 180_000], NOW), { allowed: true, tat: NOW + 180_000, remaining: 4 });
  t.match(decisionFromReply(p, [0, NOW + 5 * 180_000], NOW), { allowed: false, retryAfterMs: 180_000 });
  for (const garbage of [null, 'OK', 42, [], [1], [1, NOW + 180_000, 3], [2, NOW + 180_000], [1, String(NOW + 180_000)], [1, NOW + 0.5], [1, NOW], [0, NOW + 180_000], [1, Number.MAX_VALUE]]) {
    t.equal(decisionFromReply(p, garbage, NOW), undefined, JSON.stringify(garbage));
  }
});

t.test('the breaker: opens after repeated failures, one probe after the cool-down, closes on its success', async (t) => {
  const breaker = new Breaker({ failures: 3, cooldownMs: 1000 });
  t.ok(breaker.admit(0));
  t.notOk(breaker.failed(0));
  breaker.succeeded();
  t.notOk(breaker.failed(1), 'a success in between resets the count');
  t.notOk(breaker.failed(2));
  t.ok(breaker.failed(3), 'the third in a row opens it');
  t.notOk(breaker.failed(4), 'steps still under way when it opened change nothing');
  t.notOk(breaker.admit(1002), 'cooling down');
  t.ok(breaker.admit(1003), 'one probe');
  t.notOk(breaker.admit(1003), 'only one');
  t.notOk(breaker.failed(1010), 'a failed probe re-arms the cool-down');
  t.equal(breaker.current, 'open');
  t.notOk(breaker.admit(2009));
  t.ok(breaker.admit(2010));
  t.ok(breaker.succeeded(), 'the probe closed it');
  t.equal(breaker.current, 'closed');
  t.ok(breaker.trip(2020));
  breaker.probeNow();
  t.ok(breaker.admit(2020), 'a ready connection may probe at once');
});

t.test('the in-memory store decides as GCRA does, per key', async (t) => {
  const p = params(10, 60_000, 3);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 20_000 })), { maxLength: 200, size: 'max' }), (events) => {
      const memory = new MemoryThrottle(4);
      const model = new Map<string, number>();
      let now = NOW;
      for (const [network, gap] of events) {
        now += gap;
        const key = `192.0.2.${network}/32`;
        const expected = gcraTake(p, model.get(key), now);
        model.set(key, expected.tat);
        const got = memory.take(p, key, now);
        // Past four keys the least recently used is forgotten: then it must be at rest or evicted.
        if (got.allowed !== expected.allowed && !(got.allowed && memory.evictedLive > 0)) return false;
        if (got.allowed === expected.allowed && got.tat !== expected.tat) model.set(key, got.tat);
        if (memory.size > 4) return false;
      }
      return true;
    }),
  );
  t.pass();
});

t.test('the in-memory store: least recently used out at the cap, expired keys dropped', async (t) => {
  const p = params(1, 60_000, 1);
  const memory = new MemoryThrottle(3);
  for (const key of ['a', 'b', 'c']) memory.take(p, key, NOW);
  memory.take(p, 'a', NOW + 1);
  memory.take(p, 'd', NOW + 2);
  t.equal(memory.size, 3);
  t.equal(memory.get('b', NOW + 2), undefined, 'b was least recently used');
  t.ok(memory.get('a', NOW + 2), 'a was touched (even throttled)');
  t.equal(memory.evictedLive, 1, 'b still had its budget spent: counted');
  memory.take(p, 'e', NOW + 60_003);
  t.ok(memory.size <= 2, `expired keys swept (${memory.size} left)`);
  t.equal(memory.get('a', NOW + 60_003), undefined);
});

t.test('the in-memory store stays bounded under a million distinct networks', async (t) => {
  const p = params(20, HOUR, 5);
  const memory = new MemoryThrottle();
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  // All within one emission interval: none expires, so only the cap bounds the store. Every other
  // network an IPv6 /64 (longer keys), so the store ends up holding both kinds alike.
  for (let i = 0; i < 1_000_000; i++) {
    const key = i % 2 === 0 ? `${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}.0/24` : `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;
    memory.take(p, key, NOW + (i % 1000));
  }
  collectGarbage();
  const grown = process.memoryUsage().heapUsed - before;
  const perKey = grown / memory.size;
  t.equal(memory.size, LIMITS.throttleMemoryKeys, 'the cap holds');
  t.ok(perKey <= LIMITS.heapBytesPerThrottleKey, `${perKey.toFixed(0)} bytes per key (${(grown / 1048576).toFixed(1)} MiB for ${memory.size}); the limit says ${LIMITS.heapBytesPerThrottleKey}`);
  t.equal(memory.evictedLive, 1_000_000 - LIMITS.throttleMemoryKeys, 'every eviction was of a live key (all were within the hour)');
});

t.test('the memory-only store answers synchronously and counts', async (t) => {
  const store = new MemoryThrottleStore(params(3, HOUR, 1));
  const first = store.take('198.51.100.0/24', NOW);
  t.notOk(first instanceof Promise);
  t.match(first, { allowed: true, source: 'local' });
  t.match(store.take('198.51.100.0/24', NOW), { allowed: false });
  t.match(store.take('198.51.101.0/24', NOW), { allowed: true }, 'another network has its own budget');
  t.equal(store.state, 'memory');
  t.match(store.counters(), { throttled: 1, fallbacks: 0, storeErrors: 0 });
  await store.close();
});

t.test('an unreadable or empty password file is a problem at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-throttle-'));
  writeFileSync(join(dir, 'empty'), '\n');
  const target = parseThrottleStore('redis://127.0.0.1:1') as ThrottleStoreTarget;
  const logger = createStreamLogger('info', { write: () => undefined });
  t.match(createThrottleStore({ params: params(1, HOUR, 1), target, passwordFile: join(dir, 'missing'), logger }), /cannot read the password file .*ENOENT/);
  t.match(createThrottleStore({ params: params(1, HOUR, 1), target, passwordFile: join(dir, 'empty'), logger }), /is empty/);
  t.match(createThrottleStore({ params: params(1, HOUR, 1), target, deadlineMs: 0, logger }), /deadline/);
});


/** A shared store on `server` with test-sized breaker times, and the log lines it writes. */
function sharedStore(target: string, p: GcraParams, extra: { passwordFile?: string; deadlineMs?: number; keyPrefix?: string } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const store = createThrottleStore({
    params: p,
    target: parseThrottleStore(target) as ThrottleStoreTarget,
    logger,
    breakerCooldownMs: 300,
    connectTimeoutMs: 500,
    ...extra,
  });
  if (typeof store === 'string') throw new Error(store);
  const messages = (level: string) => lines.filter((line) => line.level === level).map((line) => String(line.msg));
  return { store, lines, warnings: () => messages('warn'), infos: () => messages('info') };
}

async function until(what: string, condition: () => boolean, ms = 5_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One take, timed: its decision and how long it took to come. */
async function timedTake(store: ThrottleStore, key: string): Promise<{ ms: number; allowed: boolean; source: string }> {
  const started = performance.now();
  const decision = await store.take(key, Date.now());
  return { ms: performance.now() - started, allowed: decision.allowed, source: decision.source };
}

/** Takes every few ms for `ms` (a stream of requests), with their times. */
async function stream(store: ThrottleStore, ms: number, key = '203.0.113.0/24'): Promise<Array<{ ms: number; allowed: boolean; source: string }>> {
  const results: Array<{ ms: number; allowed: boolean; source: string }> = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    results.push(await timedTake(store, key));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return results;
}

/** The deadline plus what a busy test machine adds to a 50 ms timer. */
const MARGIN_MS = 30;

async function redisCases(): Promise<void> {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const p = params(3, HOUR, 3);

  await t.test('two stores on one Redis spend one budget', async (t) => {
    const a = sharedStore(redis.url, p);
    const b = sharedStore(`/${redis.socketPath.slice(1)}`, p);
    await until('both connected', () => a.store.state === 'shared' && b.store.state === 'shared');
    t.same(a.infos(), ['throttle store connected: budgets are shared']);
    const now = Date.now();
    const answers = [await a.store.take('198.51.100.0/24', now), await b.store.take('198.51.100.0/24', now), await a.store.take('198.51.100.0/24', now), await b.store.take('198.51.100.0/24', now)];
    t.same(answers.map((d) => [d.allowed, d.remaining, d.source]), [[true, 2, 'shared'], [true, 1, 'shared'], [true, 0, 'shared'], [false, 0, 'shared']]);
    t.match(await a.store.take('198.51.101.0/24', now), { allowed: true, remaining: 2 }, 'another network, another budget');
    t.match(b.store.counters(), { throttled: 1, storeErrors: 0, fallbacks: 0 });
    await a.store.close();
    await b.store.close();
  });

  await t.test('the script in Redis decides exactly as gcraTake', async (t) => {
    const shared = sharedStore(redis.url, params(10, 60_000, 2), { keyPrefix: 'parity:' });
    await until('connected', () => shared.store.state === 'shared');
    let tat: number | undefined;
    let now = Date.now();
    for (const gap of [0, 0, 0, 1, 5_999, 1, 6_000, 3_000, 3_000, 0, 12_000, 0, 0]) {
      now += gap;
      const expected = gcraTake(params(10, 60_000, 2), tat, now);
      tat = expected.tat;
      t.same(await shared.store.take('192.0.2.0/24', now), { ...expected, source: 'shared' });
    }
    const ttl = Number(await redis.cli('PTTL', 'parity:192.0.2.0/24'));
    t.ok(ttl > 0 && ttl <= 2 * 6_000 + (now - Date.now()) + 1000, `the key expires with its TAT (PTTL ${ttl})`);
    await shared.store.close();
  });

  await t.test('scripts gone (SCRIPT FLUSH): reloaded on NOSCRIPT, no error', async (t) => {
    const shared = sharedStore(redis.url, p, { keyPrefix: 'flush:' });
    await until('connected', () => shared.store.state === 'shared');
    const loads = shared.store.counters().scriptLoads;
    await redis.cli('SCRIPT', 'FLUSH');
    t.match(await shared.store.take('192.0.2.0/24', Date.now()), { allowed: true, source: 'shared' });
    t.match(shared.store.counters(), { scriptLoads: loads + 1, storeErrors: 0, fallbacks: 0 });
    await shared.store.close();
  });

  await t.test('a key Redis holds as another type: a counted fallback, not a crash', async (t) => {
    const shared = sharedStore(redis.url, p, { keyPrefix: 'wrongtype:' });
    await until('connected', () => shared.store.state === 'shared');
    await redis.cli('LPUSH', 'wrongtype:192.0.2.0/24', 'x');
    t.match(await shared.store.take('192.0.2.0/24', Date.now()), { allowed: true, source: 'local' });
    t.match(shared.store.counters(), { storeErrors: 1, fallbacks: 1 });
    await shared.store.close();
  });

  await t.test('a full Redis (OOM): counted fallbacks, the breaker opens, one line', async (t) => {
    const shared = sharedStore(redis.url, p, { keyPrefix: 'oom:' });
    await until('connected', () => shared.store.state === 'shared');
    await redis.cli('CONFIG', 'SET', 'maxmemory', '1');
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await shared.store.take(`10.0.${i}.0/24`, Date.now()));
    await redis.cli('CONFIG', 'SET', 'maxmemory', '0');
    t.ok(answers.every((d) => d.allowed && d.source === 'local'));
    t.equal(shared.store.state, 'degraded');
    t.equal(shared.store.counters().storeErrors, LIMITS.throttleBreakerFailures, 'then the breaker stopped trying');
    t.equal(shared.warnings().length, 1);
    t.match(shared.lines.find((line) => line.level === 'warn'), { reason: /OOM/ });
    await shared.store.close();
  });

  await t.test('Redis killed mid-run: answers from memory within the deadline, one line away, one back', async (t) => {
    const shared = sharedStore(redis.url, params(60, HOUR, 2), { keyPrefix: 'kill:' });
    await until('connected', () => shared.store.state === 'shared');
    const now = Date.now();
    await shared.store.take('198.51.100.0/24', now);
    await shared.store.take('198.51.100.0/24', now);
    t.match(await shared.store.take('198.51.100.0/24', now), { allowed: false, source: 'shared' });
    const before = stream(shared.store, 300);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await redis.kill();
    const answers = await before;
    const during = await stream(shared.store, 700);
    t.ok([...answers, ...during].every((a) => a.ms < LIMITS.throttleStoreDeadlineMs + MARGIN_MS), `every answer within the deadline (slowest ${Math.max(...answers.map((a) => a.ms), ...during.map((a) => a.ms)).toFixed(1)} ms)`);
    t.ok(during.every((a) => a.source === 'local'), 'memory answers while Redis is away');
    t.equal(shared.store.state, 'degraded');
    t.match(await shared.store.take('198.51.100.0/24', Date.now()), { allowed: false, source: 'local' }, 'a network throttled before stays throttled: memory kept what Redis answered');
    t.same(shared.warnings(), ["throttle store unavailable: throttling from this host's memory until it is back"]);
    const counters = shared.store.counters();
    t.ok(counters.fallbacks >= during.length && counters.storeErrors >= 1, JSON.stringify(counters));
    await redis.start();
    await until('back', () => shared.store.state === 'shared');
    t.match(await shared.store.take('203.0.113.0/24', Date.now()), { source: 'shared' });
    t.same(shared.infos(), ['throttle store connected: budgets are shared', 'throttle store back: budgets are shared again']);
    t.same(shared.warnings().length, 1, 'still one line for the whole outage');
    await shared.store.close();
  });

  await t.test('Redis paused (SIGSTOP): no answer waits past the deadline; SIGCONT: back', async (t) => {
    const shared = sharedStore(redis.url, p, { keyPrefix: 'pause:' });
    await until('connected', () => shared.store.state === 'shared');
    redis.pause();
    let answers: Array<{ ms: number; allowed: boolean; source: string }> = [];
    let concurrent: typeof answers = [];
    try {
      // Concurrent requests as well as one after another: none may wait for another's deadline.
      concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => timedTake(shared.store, `10.1.${i}.0/24`)));
      answers = [...concurrent, ...(await stream(shared.store, 1_000))];
    } finally {
      redis.resume();
    }
    const slowest = Math.max(...answers.map((a) => a.ms));
    t.ok(slowest < LIMITS.throttleStoreDeadlineMs + MARGIN_MS, `slowest answer ${slowest.toFixed(1)} ms (deadline ${LIMITS.throttleStoreDeadlineMs} ms)`);
    t.ok(concurrent.every((a) => a.allowed), 'mail passes (twenty networks, each within its budget)');
    t.ok(shared.store.counters().storeTimeouts >= LIMITS.throttleBreakerFailures, 'timeouts counted');
    t.ok(answers.filter((a) => a.ms >= LIMITS.throttleStoreDeadlineMs - 5).length <= 20 + LIMITS.throttleBreakerFailures + 3, 'then the breaker stopped waiting');
    t.same(shared.warnings(), ["throttle store unavailable: throttling from this host's memory until it is back"]);
    t.match(shared.lines.find((line) => line.level === 'warn'), { reason: /no answer within 50 ms/ });
    await until('back', () => shared.store.state === 'shared');
    t.equal(shared.infos().length, 2, 'one line back');
    await shared.store.close();
  });

  await t.test('Redis restarted: scripts reloaded, no failed step reaches the caller', async (t) => {
    const shared = sharedStore(redis.url, p, { keyPrefix: 'restart:' });
    await until('connected', () => shared.store.state === 'shared');
    const loads = shared.store.counters().scriptLoads;
    await redis.kill();
    await redis.start();
    await until('back', () => shared.store.state === 'shared');
    t.match(await shared.store.take('192.0.2.0/24', Date.now()), { allowed: true, source: 'shared' });
    t.ok(shared.store.counters().scriptLoads > loads, 'loaded again');
    await shared.store.close();
  });

  await t.test('auth with a password file; a wrong password is a counted fallback with a clear line', async (t) => {
    const secured = await startRedis({ password: 'correct-horse' });
    t.teardown(() => secured.stop());
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-throttle-'));
    writeFileSync(join(dir, 'right'), 'correct-horse\n', { mode: 0o600 });
    writeFileSync(join(dir, 'wrong'), 'battery-staple\n', { mode: 0o600 });
    const right = sharedStore(secured.url, p, { passwordFile: join(dir, 'right') });
    await until('connected', () => right.store.state === 'shared');
    t.match(await right.store.take('192.0.2.0/24', Date.now()), { source: 'shared' });
    const wrong = sharedStore(secured.url, p, { passwordFile: join(dir, 'wrong') });
    await until('the line', () => wrong.warnings().length > 0);
    t.match(await wrong.store.take('192.0.2.0/24', Date.now()), { allowed: true, source: 'local' });
    t.equal(wrong.store.state, 'degraded');
    t.match(wrong.lines.find((line) => line.level === 'warn'), { reason: /WRONGPASS|invalid password/i, throttle_store: secured.url.replace(/$/, '') });
    t.match(wrong.store.counters(), { fallbacks: 1 });
    t.ok(wrong.store.counters().storeErrors >= 1);
    const none = sharedStore(secured.url, p);
    await until('the line', () => none.warnings().length > 0);
    t.match(none.lines.find((line) => line.level === 'warn'), { reason: /NOAUTH/ });
    for (const line of [...right.lines, ...wrong.lines, ...none.lines]) t.notMatch(JSON.stringify(line), /horse|staple/, 'no password in the log');
    await Promise.all([right.store.close(), wrong.store.close(), none.store.close()]);
  });

  await t.test('nothing listening: one line, memory answers at once', async (t) => {
    const dead = sharedStore('redis://127.0.0.1:1', p);
    await until('the line', () => dead.warnings().length > 0);
    const answer = await timedTake(dead.store, '192.0.2.0/24');
    t.ok(answer.ms < 5 && answer.source === 'local', `${answer.ms.toFixed(2)} ms from memory`);
    t.match(dead.lines.find((line) => line.level === 'warn'), { reason: /ECONNREFUSED/ });
    await dead.store.close();
  });
}

await whenAvailable(redisMissing(), 'throttle store against redis-server', () => redisCases());
