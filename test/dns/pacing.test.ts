/**
 * src/dns/pacing.ts: the ring keeps first-in first-out order across growth and wrap-around, and
 * lookups that must wait are started round their connections in turn, not in arrival order, so
 * one connection's burst does not hold back another connection's request.
 */
import t from 'tap';
import { Ring, pacedBacklog, pacedBegin } from '../../src/dns/pacing.js';

t.test('a ring is first in, first out through growth, wrap-around and shrinking', async (t) => {
  const ring = new Ring<number>();
  const out: number[] = [];
  let next = 0;
  // Interleave pushes and shifts so the head wraps before each growth.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) ring.push(next++);
    for (let i = 0; i < 60; i++) out.push(ring.shift() as number);
  }
  while (ring.length > 0) out.push(ring.shift() as number);
  t.same(out, Array.from({ length: next }, (_, i) => i));
  t.equal(ring.shift(), undefined, 'empty');
  ring.push(7);
  t.equal(ring.shift(), 7, 'usable again after it gave its storage back');
});

t.test('draining 200,000 queued items takes linear time', async (t) => {
  const ring = new Ring<() => void>();
  let ran = 0;
  for (let i = 0; i < 200_000; i++) ring.push(() => ran++);
  const started = performance.now();
  while (ring.length > 0) ring.shift()?.();
  const ms = performance.now() - started;
  t.equal(ran, 200_000);
  t.ok(ms < 1000, `drained in ${ms.toFixed(1)} ms (Array#shift took 2.2 s)`);
});

t.test('lookups that wait are started round the connections in turn', async (t) => {
  const flooder = {};
  const other = {};
  const order: string[] = [];
  const all: Array<Promise<void>> = [];
  const work = (label: string, key: object) =>
    all.push(new Promise<void>((resolve) => pacedBegin({ start: () => resolve(void order.push(label)) }, key)));
  // Fill this turn, then queue 200 from one connection before one from another.
  for (let i = 0; i < 264; i++) work(`f${i}`, flooder);
  work('other', other);
  t.ok(pacedBacklog() > 0, 'some wait for a later turn');
  await Promise.all(all);
  const position = order.indexOf('other');
  t.ok(position >= 0 && position <= 66, `the other connection's request started ${position}th, not after the flood's 264`);
  t.equal(pacedBacklog(), 0);
});
