/** What c-ares' own query cache may hold in channels V8 has not collected yet, and the bound on it. */
import t from 'tap';
import { answerBytes, ChannelMemory, fullCollection } from '../../src/dns/channels.js';
import { LIMITS } from '../../src/config/limits.js';

t.test('answerBytes: an estimate from the records received', async (t) => {
  t.equal(answerBytes(undefined), 128, 'an error (a negative answer is cached too)');
  t.equal(answerBytes(['mail.example.com']), 128 + 64 + 16);
  t.equal(answerBytes([{ address: '192.0.2.25' }, { address: '192.0.2.26' }]), 128 + 2 * (64 + 10));
});

t.test('past the bound a full collection is asked for, at most every resolverForcedGcMs', async (t) => {
  let now = 0;
  let collections = 0;
  const memory = new ChannelMemory(() => collections++, () => now);
  const channel = memory.track({});
  const big = LIMITS.resolverCachedAnswerBytes / 4;
  for (let i = 0; i < 4; i++) memory.answered(channel, big);
  t.equal(collections, 0, 'at the bound, none');
  memory.answered(channel, 1);
  t.equal(collections, 1, 'past it, one');
  memory.answered(channel, big);
  t.equal(collections, 1, 'not again at once');
  now += LIMITS.resolverForcedGcMs;
  memory.answered(channel, big);
  t.equal(collections, 2, 'again once resolverForcedGcMs has passed');
  t.equal(memory.bytesHeld, 6 * big + 1);
});

t.test("a collected channel's answers are taken off the count", async (t) => {
  const gc = fullCollection();
  t.type(gc, 'function', 'node lets the program ask for a full collection');
  if (!gc) return;
  const memory = new ChannelMemory(undefined, () => 0);
  const kept = {};
  memory.answered(memory.track(kept), 1000);
  (() => memory.answered(memory.track({}), 5000))();
  for (let i = 0; i < 20 && memory.bytesHeld > 1000; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.equal(memory.bytesHeld, 1000, "only the live channel's answers are still counted");
  t.ok(kept, 'the live channel was never collectable');
});
