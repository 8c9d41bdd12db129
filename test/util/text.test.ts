import t from 'tap';
import { detachedCopy } from '../../src/util/text.js';
import { collectGarbage } from '../helpers/gc.js';

t.test('a copy has the same characters', async (t) => {
  for (const value of ['', 'a', 'abc.def.0', '1a2b3.4c5d.6e7f8.0', 'mx.example.com'.repeat(20), 'h\u00e9llo w\u00f6rld \u{1f600}', '\ud800 lone', 'x\u0000y']) {
    t.equal(detachedCopy(value), value);
  }
});

t.test('a kept copy does not keep the text it was cut from alive', async (t) => {
  // 40 reads of 1 MiB each, a 20-character value cut out of each and kept: the reads must go.
  const kept: string[] = [];
  const slices: string[] = [];
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 40; i++) {
    const read = `instance=${i.toString(16).padStart(18, '0')}\n${'.'.repeat(1 << 20)}`;
    const value = read.slice('instance='.length, 'instance='.length + 18);
    kept.push(detachedCopy(value));
    if (i === 0) slices.push(value); // one plain slice stays: it alone pins its read
  }
  collectGarbage();
  const grown = process.memoryUsage().heapUsed - before;
  t.equal(kept.length, 40);
  t.ok(grown < 8 << 20, `heap grew by ${(grown / 1048576).toFixed(1)} MiB for 40 kept copies (the reads were 40 MiB)`);
  t.equal(slices.length, 1);
});
