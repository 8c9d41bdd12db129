/**
 * The generic-PTR signal scored on real names: test/data/generic-corpus.tsv, 331 PTR names of real
 * SMTP clients read from Received headers in public mailing-list archives (its header says how they
 * were gathered and labelled). Rules were tuned on the "tune" set only; the held-out fifth is
 * reported apart, so a rule that only helps the tuned part shows.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import t from 'tap';
import { genericSignal, type GenericLevel } from '../../src/judge/generic.js';
import { parseClientIp } from '../../src/util/ip.js';

interface Row {
  label: 'generic' | 'server';
  set: 'tune' | 'holdout';
  ip: string;
  name: string;
  source: string;
}

const rows: Row[] = readFileSync(join(fileURLToPath(new URL('.', import.meta.url)), '..', 'data', 'generic-corpus.tsv'), 'utf8')
  .split('\n')
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) => {
    const [label, set, ip, name, source] = line.split('\t');
    return { label, set, ip, name, source } as Row;
  });

const flagged = (row: Row, level: GenericLevel) => genericSignal(row.name, parseClientIp(row.ip)!, level) !== undefined;
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}%`;

function score(level: GenericLevel, part: readonly Row[]) {
  const generic = part.filter((row) => row.label === 'generic');
  const servers = part.filter((row) => row.label === 'server');
  const detected = generic.filter((row) => flagged(row, level));
  const falsePositives = servers.filter((row) => flagged(row, level));
  return {
    detection: detected.length / generic.length,
    falsePositive: falsePositives.length / servers.length,
    text: `${detected.length}/${generic.length} detected (${pct(detected.length, generic.length)}), ${falsePositives.length}/${servers.length} servers flagged (${pct(falsePositives.length, servers.length)})`,
    falsePositives: falsePositives.map((row) => row.name),
    missed: generic.filter((row) => !flagged(row, level)).map((row) => row.name),
  };
}

t.test('the corpus: at least 300 real names, about half of each label, every line with its source and a valid address', async (t) => {
  t.ok(rows.length >= 300, `${rows.length} names`);
  const generic = rows.filter((row) => row.label === 'generic').length;
  t.ok(generic >= rows.length * 0.45 && generic <= rows.length * 0.55, `${generic} generic, ${rows.length - generic} servers`);
  t.same(rows.filter((row) => !['generic', 'server'].includes(row.label) || !['tune', 'holdout'].includes(row.set)), [], 'labels and sets');
  t.same(rows.filter((row) => !/^archive-file:\d+$/.test(row.source ?? '')), [], 'every line names its source');
  t.same(rows.filter((row) => parseClientIp(row.ip) === undefined).map((row) => row.ip), [], 'every address parses');
  t.equal(new Set(rows.map((row) => row.name)).size, rows.length, 'no name twice');
  const holdout = rows.filter((row) => row.set === 'holdout').length;
  t.ok(holdout >= rows.length * 0.15 && holdout <= rows.length * 0.25, `${holdout} held out (a fifth)`);
});

t.test('targets on real names: conservative ≥ 90 % detected with ≤ 1 % of servers flagged, aggressive ≥ 93 % with ≤ 5 %', async (t) => {
  for (const [level, detection, falsePositive] of [['conservative', 0.9, 0.01], ['aggressive', 0.93, 0.05]] as const) {
    const all = score(level, rows);
    const tune = score(level, rows.filter((row) => row.set === 'tune'));
    const holdout = score(level, rows.filter((row) => row.set === 'holdout'));
    t.comment(`${level}: all ${all.text}; tune ${tune.text}; holdout ${holdout.text}`);
    if (all.falsePositives.length > 0) t.comment(`${level} false positives: ${all.falsePositives.join(', ')}`);
    if (all.missed.length > 0) t.comment(`${level} missed: ${all.missed.join(', ')}`);
    t.ok(all.detection >= detection, `${level} detects ${pct(all.detection, 1)}`);
    t.ok(all.falsePositive <= falsePositive, `${level} flags ${pct(all.falsePositive, 1)} of servers`);
  }
});

t.test("no large sender's relay is flagged at conservative", async (t) => {
  const relays = rows.filter((row) => row.label === 'server');
  t.same(relays.filter((row) => flagged(row, 'conservative')).map((row) => row.name), []);
});
