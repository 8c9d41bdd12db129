/**
 * `report` and `replay` against hostile input (issue 24, item 11): lines of maximal size as a
 * hostile reverse zone makes the daemon write them, read under the unit's heap flags; syslog
 * lines of another program (a local user's `logger`) forging a config and decisions; garbled
 * times and infinite durations; C1 and bidirectional controls in `--json` output.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../src/cli/cli.js';
import { parseLogLine } from '../../src/reports/decision-record.js';
import { createStreamLogger, logDecision, outcomeFields } from '../../src/log/logger.js';
import { BUNDLE, bundleMissing } from '../helpers/bundle.js';
import { shippedNodeFlags } from '../helpers/shipped.js';
import { decision } from '../helpers/log-lines.js';

const dir = mkdtempSync(join(tmpdir(), 'fcrdns-log-bounds-'));
const NOW = Date.parse('2026-12-06T12:00:00.000Z');


const started = (mode: string) =>
  JSON.stringify({ level: 'info', time: '2026-12-01T09:00:00.000Z', name: 'fcrdns-policyd', config: { mode, check: 'fcrdns' }, msg: 'started' });

/** Run the CLI in-process; its stdout and stderr as strings. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (text) => (out += text), err: (text) => (err += text) });
  return { code, out, err };
}

t.test('times only as the daemon writes them, in range; durations finite and not negative', async (t) => {
  const bad = (overrides: Record<string, unknown>) => parseLogLine(decision(overrides), true, { now: NOW });
  for (const time of ['0001-01-01T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', '1999-12-31T23:59:59.999Z', '2026-12-08T00:00:00.000Z', '2026-12-01 10:00:00', '2026-12-01T10:00:00Z', 'yesterday']) {
    t.match(bad({ time }), { kind: 'bad', why: 'bad_time' }, time);
  }
  t.match(bad({ time: 1_764_583_200_000 }), { kind: 'bad', why: 'wrong_type' }, 'a number is not the daemon’s time');
  t.match(bad({ time: '2026-12-07T11:00:00.000Z' }), { kind: 'decision' }, 'within a day ahead (clock skew) is fine');
  t.match(parseLogLine(decision().replace('"duration_ms":3.5', '"duration_ms":1e400'), true, { now: NOW }), { kind: 'bad', why: 'bad_duration' }, '1e400 (Infinity)');
  t.match(bad({ duration_ms: -1 }), { kind: 'bad', why: 'bad_duration' });
  t.match(bad({ duration_ms: 1e12 }), { kind: 'bad', why: 'bad_duration' });
  t.match(bad({ duration_ms: 0 }), { kind: 'decision' });

  const file = join(dir, 'garbled.log');
  const lines = [
    decision({ time: '2026-12-01T10:00:00.000Z', instance: 'g1' }),
    decision({ time: '2026-12-01T10:30:00.000Z', instance: 'g2', duration_ms: 7 }),
    decision({ time: '0001-01-01T00:00:00.000Z', instance: 'g3' }),
    decision({ time: '+275760-09-13T00:00:00.000Z', instance: 'g4' }),
    decision({ time: '2026-12-01T10:00:00.000Z', instance: 'g5' }).replace('"duration_ms":3.5', '"duration_ms":1e400'),
    decision({ time: '2026-12-01T10:00:00.000Z', instance: 'g6', duration_ms: -5 }),
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  const text = await cli(['report', file]);
  t.equal(text.code, 0);
  t.match(text.out, /Per hour, 2026-12-01T10 … 2026-12-01T10/, 'the timeline spans the good lines only');
  t.notMatch(text.out, /Per \d+ days|Infinity/, 'no timeline of millennia, no infinite maximum');
  t.match(text.out, /max 7 ms/);
  t.match(text.out, /2 {2}lines with a time not as the daemon writes it/);
  t.match(text.out, /2 {2}decision lines with a duration that is negative, infinite or over an hour/);
  const json = JSON.parse((await cli(['report', file, '--json'])).out) as { messages: number; lines: { bad: Record<string, number> }; duration_ms: { max: number } };
  t.equal(json.messages, 2);
  t.same(json.lines.bad, { bad_time: 2, bad_duration: 2 });
  t.equal(json.duration_ms.max, 7);
});

t.test("syslog lines of another program are counted apart and never used; --tag names the daemon's", async (t) => {
  const prefix = (tag: string, pid: number) => `Dec  6 04:00:00 mx ${tag}[${pid}]: `;
  // The daemon's own log in monitor mode: WARN for three mismatching clients, which strict rejects.
  const own = [started('monitor'), ...[1, 2, 3].map((n) => decision({ client_address: `192.0.2.${n}`, instance: `own${n}` }))].map((line) => prefix('fcrdns-policyd', 123) + line);
  // A local user's `logger -t evil`: a `started` line claiming strict (report would then show no
  // presets), and decisions that would change what strict does.
  const forged = [
    started('strict'),
    ...[1, 2, 3, 4, 5].map((n) => decision({ client_address: `198.51.100.${n}`, instance: `forged${n}`, result: 'pass', action: 'dunno', reply: 'DUNNO' })),
    ...[6, 7].map((n) => decision({ client_address: `198.51.100.${n}`, instance: `forged${n}`, action: 'reject', reply: '550 5.7.25 x' })),
  ].map((line) => prefix('evil', 99) + line);
  const clean = join(dir, 'clean.log');
  const mixed = join(dir, 'mixed.log');
  writeFileSync(clean, `${own.join('\n')}\n`);
  writeFileSync(mixed, `${[...own.slice(0, 2), ...forged, ...own.slice(2)].join('\n')}\n`);
  type Report = { messages: number; logged_modes: string[]; presets: unknown; results: unknown; lines: { bad: Record<string, number> } };
  const cleanReport = JSON.parse((await cli(['report', clean, '--json'])).out) as Report;
  const mixedReport = JSON.parse((await cli(['report', mixed, '--json'])).out) as Report;
  t.equal(cleanReport.messages, 3);
  t.same(mixedReport.messages, 3, 'forged decisions not counted');
  t.same(mixedReport.logged_modes, ['monitor'], 'the forged started line is not read');
  t.same(mixedReport.presets, cleanReport.presets, '"what would strict do" unchanged');
  t.same(mixedReport.results, cleanReport.results);
  t.same(mixedReport.lines.bad, { foreign_tag: forged.length }, 'each forged line counted as foreign_tag');
  const text = await cli(['report', mixed]);
  t.match(text.out, /Under mode = strict .*: 3 of 3 requests would change action/);
  t.match(text.out, /8 {2}syslog \/ journal lines of another program/);

  const replayConfig = join(dir, 'strict.conf');
  writeFileSync(replayConfig, 'mode = strict\n');
  const replay = JSON.parse((await cli(['replay', '--config', replayConfig, mixed, '--json'])).out) as { summary: { requests: number; changed: number; bad_lines: Record<string, number> } };
  t.match(replay.summary, { requests: 3, changed: 3, bad_lines: { foreign_tag: 8 } }, 'replay skips them too');

  const renamed = join(dir, 'renamed.log');
  writeFileSync(renamed, `${[...own.map((line) => line.replace('fcrdns-policyd[123]', 'policyd-b[7]')), forged[1]].join('\n')}\n`);
  const tagged = JSON.parse((await cli(['report', renamed, '--json', '--tag', 'policyd-b'])).out) as Report;
  t.equal(tagged.messages, 3, '--tag: lines of that tag are read');
  t.same(tagged.lines.bad, { foreign_tag: 1 });
  t.equal((await cli(['report', renamed])).code, 1, 'without it, no line of the daemon is found');
  t.equal((await cli(['report', renamed, '--tag', 'a b'])).code, 64, 'a tag with a blank is a usage error');
  t.equal((await cli(['config', '--tag', 'x'])).code, 64, '--tag only with report and replay');
  t.match(parseLogLine(`garbage before ${decision()}`), { kind: 'bad', why: 'foreign_tag' }, 'a prefix without a tag is not the daemon’s');
  t.match(parseLogLine(decision()), { kind: 'decision' }, 'a bare JSON line (journalctl -o cat) is read');
});

t.test('--json escapes C1 controls, bidirectional overrides and line separators', async (t) => {
  const hostile = 'evil\u009b31m\u0085\u202eMOC.ELPMAXE\u202c\u2028\u2029\u2066x\u007f\ufeff.example';
  const file = join(dir, 'controls.log');
  writeFileSync(file, `${started('monitor')}\n${decision({ helo_name: hostile, instance: hostile, client_address: '192.0.2.50' })}\n`);
  const raw = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;
  const report = await cli(['report', file, '--json']);
  t.notMatch(report.out, raw, 'report --json: no raw control or bidi character');
  t.match(report.out, /evil\\u009b31m\\u0085\\u202eMOC\.ELPMAXE\\u202c\\u2028\\u2029\\u2066x\\u007f\\ufeff\.example/);
  const parsed = JSON.parse(report.out) as { failing: { mismatch: { helo_names: Array<{ key: string }> } } };
  t.equal(parsed.failing.mismatch.helo_names[0]?.key, hostile, 'the same string once parsed');
  const config = join(dir, 'strict-json.conf');
  writeFileSync(config, 'mode = strict\n');
  const replay = await cli(['replay', '--config', config, file, '--json']);
  t.notMatch(replay.out, raw, 'replay --json: the changed request’s instance escaped too');
  t.equal((JSON.parse(replay.out) as { changed: Array<{ instance: string }> }).changed[0]?.instance, hostile);
});

/**
 * Maximal decision lines as the daemon writes them, with its own logDecision and outcomeFields:
 * 256-character request fields, fifty 253-character PTR names with sixteen addresses each (cut
 * to the 2,560-byte outcome), and every fifth line with all fifty names confirmed (the line the
 * cut cannot shorten: ~17 KB). 100 distinct name sets; every line its own client, HELO name and
 * message. The confirmed lines are over 4 KiB, so the daemon writes them with their request
 * fields cut (not replayable); `uncut` drops that mark, as a forged file could, so that replay
 * keeps all fifty confirmed names of each for later recipients.
 */
async function writeMaximalLog(file: string, count: number, options: { uncut?: boolean } = {}): Promise<void> {
  const lines: string[] = [];
  const logger = createStreamLogger('info', { write: (line: string) => lines.push(line) });
  const outcomes = Array.from({ length: 100 }, (_, set) => {
    const names = Array.from({ length: 50 }, (_, j) => `${String(set * 100 + j).padStart(6, '0')}${'a'.repeat(57)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`);
    const forward = (matched: boolean) => names.map((name, j) => ({ name, outcome: 'answer', addresses: Array.from({ length: matched ? 1 : 16 }, (_, k) => `198.51.${j}.${k}`), matched }));
    const extra = { helo: 'mismatch', decided_by: 'iprev' };
    return {
      mismatch: outcomeFields({ result: 'mismatch', ptr: { outcome: 'answer', names, ignored: [] }, forward: forward(false), action: 'warn', reply: 'WARN x', extra }),
      pass: outcomeFields({ result: 'pass', ptr: { outcome: 'answer', names, ignored: [] }, forward: forward(true), action: 'dunno', reply: 'DUNNO', extra }),
    };
  });
  const out = createWriteStream(file);
  out.write(`${started('monitor')}\n`);
  for (let i = 0; i < count; i++) {
    const outcome = outcomes[i % 100]!;
    const field = (head: string, fill: string) => `${head}${i}.`.padEnd(256, fill);
    logDecision(
      logger,
      { clientAddress: `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`, heloName: field('h', 'h'), instance: field('i', 'i'), queueId: 'Q'.repeat(256), protocolState: 'RCPT', recipient: field('r', 'r'), saslUsername: '' },
      i % 5 === 4 ? outcome.pass : outcome.mismatch,
      false,
      12.5,
    );
    if (lines.length >= 500 || i === count - 1) {
      const text = options.uncut ? lines.join('').replaceAll(',"request_fields_cut":true', '').replace(/,"forward_confirmed_omitted":\d+/g, '') : lines.join('');
      if (!out.write(text)) await new Promise((resolve) => out.once('drain', resolve));
      lines.length = 0;
    }
  }
  await new Promise((resolve) => out.end(resolve));
}

/** Run the bundle under the unit's node flags; exit code, stdout, stderr and peak RSS (MB). */
function underUnitHeap(args: string[]): Promise<{ code: number | null; out: string; err: string; peakMb: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...shippedNodeFlags(), BUNDLE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    let peak = 0;
    const sample = setInterval(() => {
      try {
        peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
      } catch {
        // exited
      }
    }, 50);
    child.once('close', (code) => {
      clearInterval(sample);
      resolve({ code, out, err, peakMb: peak });
    });
  });
}

t.test('20,000 maximal decision lines are reported and replayed under the unit’s heap', { skip: bundleMissing() }, async (t) => {
  const file = join(dir, 'maximal.log');
  await writeMaximalLog(file, 20_000);
  t.comment(`unit flags: ${shippedNodeFlags().join(' ')}`);
  const report = await underUnitHeap(['report', file, '--json']);
  t.comment(`report: exit ${report.code}, peak RSS ${report.peakMb.toFixed(0)} MB`);
  t.equal(report.code, 0, 'report exits 0');
  t.notMatch(report.err, /heap limit|out of memory/i, 'no heap abort');
  const data = JSON.parse(report.out) as { messages: number; lines: { bad: Record<string, number> }; presets: { strict: { replayed: number } } };
  t.equal(data.messages, 20_000, 'every line counted');
  t.same(data.lines.bad, {}, 'none of the daemon’s lines is refused');
  t.equal(data.presets.strict.replayed, 16_000, 'and replayed under strict, but for the lines with confirmed names cut');
  const config = join(dir, 'strict-max.conf');
  writeFileSync(config, 'mode = strict\n');
  const replay = await underUnitHeap(['replay', '--config', config, file]);
  t.comment(`replay: exit ${replay.code}, peak RSS ${replay.peakMb.toFixed(0)} MB`);
  t.equal(replay.code, 0, 'replay exits 0');
  t.match(replay.out, /16,000 of 16,000 requests change action/);

  // The same lines claiming nothing was cut: 4,000 messages with their confirmed names go into
  // replay's per-message memory, which its byte bound keeps in the heap.
  const uncut = join(dir, 'maximal-uncut.log');
  await writeMaximalLog(uncut, 20_000, { uncut: true });
  const forged = await underUnitHeap(['report', uncut, '--json']);
  t.comment(`report of uncut lines: exit ${forged.code}, peak RSS ${forged.peakMb.toFixed(0)} MB`);
  t.equal(forged.code, 0, 'report exits 0');
  t.equal((JSON.parse(forged.out) as { presets: { strict: { replayed: number } } }).presets.strict.replayed, 20_000);
});
