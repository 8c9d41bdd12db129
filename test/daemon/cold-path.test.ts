/**
 * The cold path (src/daemon/cold-path.ts) on its own: answers delivered inside the call that asked
 * (node:dns throwing at once, answers the cache holds), the deadline with a lookup still pending,
 * a cache cleared meanwhile, and what a finished lookup lets go of.
 */
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { fullCollection } from '../../src/dns/channels.js';
import { parseConfig } from '../../src/config/config.js';
import { LookupCache, type CacheSettings } from '../../src/dns/cache.js';
import { directLookups, type DnsCallback, type DnsResolver } from '../../src/dns/resolver.js';
import { lookUpAndJudge, type LookupPlan } from '../../src/daemon/cold-path.js';
import { KnownClients } from '../../src/daemon/known-clients.js';
import { policyFor, type Judgement } from '../../src/judge/judgement.js';
import type { PolicyRequest } from '../../src/protocol/request.js';
import type { KnownClient } from '../../src/daemon/known-clients.js';

const SETTINGS: CacheSettings = { size: 100, maxTtlMs: 3_600_000, ptrTtlMs: 900_000, negativeTtlMs: 300_000, temperrorTtlMs: 30_000 };
const CLIENT = '203.0.113.5';
const ARPA = '5.113.0.203.in-addr.arpa';
type Records = Array<{ address: string; ttl: number }>;

/** A resolver in node:dns' callback shape: each name answered as `answers` says, or never. */
function callbackResolver(answers: {
  ptr?: Record<string, string[]>;
  a?: Record<string, Records | 'throw' | 'silent'>;
}): DnsResolver & { queries: string[] } {
  const queries: string[] = [];
  const never = () => new Promise<never>(() => undefined);
  const address = (name: string, done: DnsCallback<Records>) => {
    queries.push(`A ${name}`);
    const answer = answers.a?.[name];
    if (answer === 'throw') throw Object.assign(new Error('bad name'), { code: 'EBADNAME' });
    if (answer === 'silent') return;
    setImmediate(() => (answer ? done(null, answer) : done(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }), [])));
  };
  return {
    queries,
    resolvePtr: never,
    resolve4: never,
    resolve6: never,
    callbacks: {
      resolvePtr: (name, done) => {
        queries.push(`PTR ${name}`);
        const answer = answers.ptr?.[name];
        setImmediate(() => (answer ? done(null, answer) : done(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }), [])));
      },
      resolve4: (name, _options, done) => address(name, done),
      resolve6: (name, _options, done) => address(name, done),
    },
  };
}

function judgeOnce(cache: LookupCache, helo: string, configText: string, deadlineMs = 1000): Promise<{ judgement: Judgement; cached: boolean; ms: number }> {
  const config = parseConfig(`listen = 127.0.0.1:10040\n${configText}`, 'test');
  const client = new KnownClients().parse(CLIENT) as KnownClient;
  const request: PolicyRequest<KnownClient> = {
    client,
    clientAddress: CLIENT,
    heloName: helo,
    instance: '1.1',
    queueId: '',
    protocolState: 'RCPT',
    saslUsername: '',
    recipient: 'a@example.net',
  };
  const started = performance.now();
  const plan: LookupPlan = { cache, deadlineAt: started + deadlineMs, mayFanOut: () => undefined, late: () => 'EBUSY' };
  return new Promise((resolve, reject) => {
    lookUpAndJudge(request, config, policyFor(config), plan, {}, (judgement, cached) => resolve({ judgement, cached, ms: performance.now() - started }), reject);
  });
}

const PASSING = { ptr: { [ARPA]: ['mail.example.com'] }, a: { 'mail.example.com': [{ address: CLIENT, ttl: 300 }] as Records } };

t.test('a HELO lookup that ends inside the call that asked it is not lost', async (t) => {
  const resolver = callbackResolver({ ...PASSING, a: { ...PASSING.a, 'relay.example.org': 'throw' } });
  const cache = new LookupCache(directLookups(resolver, 1000), SETTINGS);
  const { judgement, ms } = await judgeOnce(cache, 'relay.example.org', 'helo_mismatch_action = warn');
  t.match(judgement.json, /"helo":"mismatch"/, 'EBADNAME is not found: the HELO name does not resolve to the client');
  t.ok(ms < 500, `judged at once (${ms.toFixed(0)} ms), not at the deadline`);
});

t.test('the deadline with the HELO lookup still pending: temperror for the HELO name, the rest as answered', async (t) => {
  const resolver = callbackResolver({ ...PASSING, a: { ...PASSING.a, 'relay.example.org': 'silent' } });
  const cache = new LookupCache(directLookups(resolver, 5000), SETTINGS);
  const { judgement, cached, ms } = await judgeOnce(cache, 'relay.example.org', 'helo_mismatch_action = warn', 150);
  t.match(judgement.json, /"result":"pass"/);
  t.match(judgement.json, /"helo":"temperror"/);
  t.notOk(cached);
  t.ok(ms >= 140 && ms < 1000, `answered at the request's deadline (${ms.toFixed(0)} ms)`);
});

t.test('answers the cache holds are used inside the call: a second client of the same answers is judged from the cache', async (t) => {
  const resolver = callbackResolver(PASSING);
  const cache = new LookupCache(directLookups(resolver, 1000), SETTINGS);
  const first = await judgeOnce(cache, 'mail.example.com', '');
  const second = await judgeOnce(cache, 'mail.example.com', '');
  t.match(first.judgement.json, /"result":"pass"/);
  t.notOk(first.cached);
  t.match(second.judgement.json, /"result":"pass"/);
  t.ok(second.cached, 'every answer came from the cache');
  t.same(resolver.queries, [`PTR ${ARPA}`, 'A mail.example.com'], 'one query each');
});

t.test('a cache cleared while the lookup waits: the request still gets its answers, the cache keeps none', async (t) => {
  const resolver = callbackResolver(PASSING);
  const cache = new LookupCache(directLookups(resolver, 1000), SETTINGS);
  const pending = judgeOnce(cache, 'mail.example.com', '');
  cache.clear();
  const { judgement } = await pending;
  t.match(judgement.json, /"result":"pass"/);
  t.ok(cache.size <= 1, `the PTR answer asked before the clear is not kept (${cache.size} entries)`);
});

/**
 * One lookup whose PTR query stays out (the resolver never answers), judged at its 50 ms
 * deadline. `watch(request, judged)` names the object the finished lookup must let go of and the
 * judgement callback to give it. Returns the judgement, whether that object was collected after
 * full collections, and the queries sent.
 */
async function judgedWhilePtrOut(
  watch: (request: PolicyRequest<KnownClient>, judged: (judgement: Judgement) => void) => { object: object; judged: (judgement: Judgement) => void },
): Promise<{ judged: Judgement; collected: boolean; queries: number }> {
  const gc = fullCollection() as () => void;
  const resolver = callbackResolver({ ptr: {}, a: {} });
  resolver.callbacks!.resolvePtr = (name) => void resolver.queries.push(`PTR ${name}`); // silent
  const cache = new LookupCache(directLookups(resolver, 60_000), SETTINGS);
  const config = parseConfig('listen = 127.0.0.1:10040\n', 'test');
  const client = new KnownClients().parse(CLIENT) as KnownClient;
  // The plan's functions are made once (as the pipeline's are), so only the lookup holds the object.
  // Watched by a FinalizationRegistry: WeakRef#deref() itself would keep it alive for the turn.
  const plan: LookupPlan = { cache, deadlineAt: performance.now() + 50, mayFanOut: () => undefined, late: () => 'EBUSY' };
  const ignore = (): void => undefined;
  let collected = false;
  const registry = new FinalizationRegistry(() => {
    collected = true;
  });
  const start = (resolve: (judgement: Judgement) => void): void => {
    const request: PolicyRequest<KnownClient> = { client, clientAddress: CLIENT, heloName: 'mx.example.org', instance: '1.1', queueId: '', protocolState: 'RCPT', saslUsername: '', recipient: '' };
    const watched = watch(request, resolve);
    registry.register(watched.object, 0);
    lookUpAndJudge(request, config, policyFor(config), plan, {}, watched.judged, ignore);
  };
  const judged = await new Promise<Judgement>((resolve) => start(resolve));
  for (let i = 0; i < 20 && !collected; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { judged, collected, queries: resolver.queries.length };
}

t.test('a lookup judged at its deadline lets go of its listener while its queries are still out', async (t) => {
  const { judged, collected, queries } = await judgedWhilePtrOut((_request, resolve) => {
    const held = { connection: 'the request and its connection' };
    return { object: held, judged: (judgement) => resolve(held && judgement) };
  });
  t.match(judged.json, /"ptr":\{"outcome":"temporary","code":"ETIMEOUT"/);
  t.ok(collected, 'what the judgement callback held is collectable, though the PTR query is still out');
  t.equal(queries, 1);
});

t.test('a lookup judged at its deadline lets go of its request while its queries are still out', async (t) => {
  // The request's strings may be slices of the text it was read in (keptWhileWaiting), so a
  // finished lookup that kept the request would keep that text as long as its queries are out.
  const { judged, collected, queries } = await judgedWhilePtrOut((request, resolve) => ({ object: request, judged: resolve }));
  t.match(judged.json, /"ptr":\{"outcome":"temporary","code":"ETIMEOUT"/);
  t.ok(collected, 'the request is collectable, though the PTR query is still out');
  t.equal(queries, 1);
});
