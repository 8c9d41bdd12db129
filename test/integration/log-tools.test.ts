/**
 * The pieces of `report` and `replay`: reading lines (plain, gzip, standard input, bounded),
 * classifying them, bounded counters, terminal-safe output, and the commands' exits.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { main } from '../../src/cli/cli.js';
import { parseLogLine } from '../../src/reports/decision-record.js';
import { parseWhen } from '../../src/reports/log-commands.js';
import { readLogLines } from '../../src/reports/log-input.js';
import { terminalSafe } from '../../src/reports/report-render.js';
import { DurationHistogram, TopCounts } from '../../src/reports/top-counts.js';
import { BUNDLE, bundleMissing } from '../helpers/bundle.js';
import { hasCommand } from '../helpers/requirements.js';
import { decision } from '../helpers/log-lines.js';


t.test('lines are classified, and every kind of bad line is told apart', async (t) => {
  t.match(parseLogLine(decision()), { kind: 'decision', result: 'mismatch', recipient: 'bob@example.org', authenticated: false, helo: 'unchecked' });
  t.match(parseLogLine(`Dec  3 12:00:00 mx fcrdns-policyd[42]: ${decision()}`), { kind: 'decision' }, 'a syslog prefix is skipped');
  t.match(parseLogLine('{"level":"info","time":"2026-12-01T10:00:00.000Z","name":"fcrdns-policyd","config":{"mode":"soft"},"msg":"started"}'), { kind: 'other', msg: 'started', config: { mode: 'soft' } });
  t.match(parseLogLine('not json'), { kind: 'bad', why: 'not_json' });
  t.match(parseLogLine('{"level":"info","ti', false), { kind: 'bad', why: 'truncated' });
  t.match(parseLogLine('{"msg":"decision","name":"other-program"}'), { kind: 'bad', why: 'foreign' });
  t.match(parseLogLine('[1,2,3]'), { kind: 'bad', why: 'foreign' });
  t.match(parseLogLine(decision({ action: 'explode' })), { kind: 'bad', why: 'wrong_type' });
  t.match(parseLogLine(decision({ forward: 'x' })), { kind: 'bad', why: 'wrong_type' });
  t.match(parseLogLine(decision({ ptr: { outcome: 'answer', names: [1] } })), { kind: 'bad', why: 'wrong_type' });
  t.match(parseLogLine(decision({ duration_ms: '3' })), { kind: 'bad', why: 'wrong_type' });
  t.match(parseLogLine(decision({ time: 'yesterday' })), { kind: 'bad', why: 'bad_time' });
  t.match(parseLogLine(decision({ helo: 'sideways' })), { kind: 'bad', why: 'wrong_type' });
  const older = parseLogLine(decision({ recipient: undefined, authenticated: undefined }));
  t.match(older, { kind: 'decision' }, 'a line of an older version is still a decision');
  t.notOk('recipient' in older, '…without the fields it lacks');
});

t.test('inputs: plain, gzip, standard input; CRLF; a last line without newline; an endless line is skipped, not gathered', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-logs-'));
  writeFileSync(join(dir, 'plain.log'), 'one\r\ntwo\nthree');
  writeFileSync(join(dir, 'old.log.1.gz'), gzipSync('four\nfive\n'));
  writeFileSync(join(dir, 'long.log'), `${'x'.repeat(200_000)}\nsix\n${'y'.repeat(100_000)}`);
  const lines = [];
  const unreadable: string[] = [];
  for await (const batch of readLogLines([join(dir, 'plain.log'), join(dir, 'old.log.1.gz'), '-', join(dir, 'missing.log'), join(dir, 'long.log')], {
    stdin: Readable.from([Buffer.from('in'), Buffer.from('put\n')]),
    unreadable: (source) => unreadable.push(source),
  })) {
    for (const line of batch) lines.push([line.text, line.complete, line.tooLong, line.number]);
  }
  t.same(lines, [
    ['one', true, false, 1],
    ['two', true, false, 2],
    ['three', false, false, 3],
    ['four', true, false, 1],
    ['five', true, false, 2],
    ['input', true, false, 1],
    ['', true, true, 1],
    ['six', true, false, 2],
    ['', false, true, 3],
  ]);
  t.same(unreadable, [join(dir, 'missing.log')]);
});

t.test('bounded counters: heavy hitters survive many distinct keys; percentiles within 2 %', async (t) => {
  const top = new TopCounts(100);
  for (let i = 0; i < 100_000; i++) top.add(i % 10 === 0 ? `heavy${i % 3}` : `rare${i}`, i);
  const best = top.top(3);
  t.same(best.map((entry) => entry.key).sort(), ['heavy0', 'heavy1', 'heavy2']);
  t.ok(top.approximate);
  const histogram = new DurationHistogram();
  for (let i = 1; i <= 10_000; i++) histogram.add(i / 100);
  t.ok(Math.abs(histogram.percentile(50) - 50) / 50 < 0.02, `p50 ${histogram.percentile(50)}`);
  t.ok(Math.abs(histogram.percentile(99) - 99) / 99 < 0.02, `p99 ${histogram.percentile(99)}`);
  t.equal(histogram.max, 100);
});

t.test('nothing from a log line moves the cursor', async (t) => {
  t.equal(terminalSafe('a\u001b[2Jb\u0007c\u009bd\u202ee'), 'a\\x1b[2Jb\\x07c\\x9bd\\u{202e}e');
  t.equal(terminalSafe('x'.repeat(200), 10), `${'x'.repeat(10)}…`);
});

t.test('--since / --until: dates and times ago', async (t) => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  t.equal(parseWhen('24h', now), now - 86_400_000);
  t.equal(parseWhen('2d', now), now - 2 * 86_400_000);
  t.equal(parseWhen('2026-12-01', now), Date.parse('2026-12-01'));
  t.equal(parseWhen('2026-12-01T06:00:00Z', now), Date.parse('2026-12-01T06:00:00Z'));
  t.equal(parseWhen('last tuesday', now), undefined);
});

const io = (stdin: string) => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (text: string) => out.push(text), err: (text: string) => err.push(text), stdin: Readable.from([Buffer.from(stdin)]), errIsTerminal: false } };
};

t.test('the commands: exit 1 with a clear message when no decision line is found, 64 on misuse, windows by the line time', async (t) => {
  const empty = io('hello\n{"a":1}\n');
  t.equal(await main(['report'], empty.io), 1);
  t.match(empty.err.join(''), /no decision line found in 2 lines/);
  const replayNoConfig = io('');
  t.equal(await main(['replay', '-'], replayNoConfig.io), 64);
  t.match(replayNoConfig.err.join(''), /needs --config NEW\.conf/);
  const badSince = io('');
  t.equal(await main(['report', '--since', 'soon'], badSince.io), 64);
  t.equal(await main(['check', '192.0.2.1', '--ascii'], io('').io), 64, '--ascii only goes with report');

  const log = [
    decision({ time: '2026-12-01T10:00:00.000Z', instance: 'a.1' }),
    decision({ time: '2026-12-02T10:00:00.000Z', instance: 'a.2', action: 'dunno', result: 'pass' }),
    decision({ time: '2026-12-03T10:00:00.000Z', instance: 'a.3' }),
  ].join('\n');
  const windowed = io(log);
  t.equal(await main(['report', '--json', '--since', '2026-12-02', '--until', '2026-12-03'], windowed.io), 0);
  const data = JSON.parse(windowed.out.join('')) as { messages: number; lines: { outside_window: number }; actions: Record<string, { messages: number }> };
  t.equal(data.messages, 1);
  t.equal(data.lines.outside_window, 2);
  t.equal(data.actions.dunno?.messages, 1);
});

t.test('report stays in constant memory whatever the log size', { skip: bundleMissing() }, async (t) => {
  // Every line a new client, HELO name and domain: the top lists are what could grow.
  const peakRss = (lines: number) =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['--max-old-space-size=96', BUNDLE, 'report', '--json'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      let peak = 0;
      const sample = setInterval(() => {
        try {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          peak = Math.max(peak, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
        } catch {
          // exited
        }
      }, 50);
      child.once('exit', (code) => {
        clearInterval(sample);
        if (code === 0) resolve(peak);
        else reject(new Error(`report exited ${code}: ${stderr}`));
      });
      const write = async () => {
        for (let i = 0; i < lines; i += 1000) {
          const chunk = Array.from({ length: 1000 }, (_, j) => {
            const n = i + j;
            return decision({
              time: new Date(Date.parse('2026-11-01T00:00:00Z') + n * 1000).toISOString(),
              client_address: `2001:db8::${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}`,
              helo_name: `host${n}.example${n % 977}.com`,
              instance: `i${n}`,
              ptr: { outcome: 'answer', names: [`h${n}.pool${n}.example.net`] },
            });
          }).join('\n');
          if (!child.stdin.write(`${chunk}\n`)) await new Promise((resolve) => child.stdin.once('drain', resolve));
        }
        child.stdin.end();
      };
      void write();
    });
  // 50,000 lines already fill every bounded structure (top lists, per-message memory); past that
  // nothing may grow. (Measured: 20,000 lines 123 MB, 200,000 153 MB, 600,000 154 MB.)
  const small = await peakRss(50_000);
  const large = await peakRss(250_000);
  t.comment(`peak RSS: 50,000 lines ${small.toFixed(0)} MB, 250,000 lines ${large.toFixed(0)} MB`);
  t.ok(large < small + 30, 'five times the lines, about the same memory');
});

t.test('a progress line on a terminal while an input takes more than a second, and none when stderr is not one', { skip: bundleMissing() ?? (hasCommand('script') ? undefined : 'script (util-linux) is missing') }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-progress-'));
  const file = join(dir, 'part.log');
  writeFileSync(file, `${Array.from({ length: 2000 }, (_, n) => decision({ instance: `i${n}` })).join('\n')}\n`);
  const run = promisify(execFile);
  // The input arrives in two parts 1.5 s apart, so reading it takes more than a second whatever the
  // machine's speed; script(1) gives the command a pseudo-terminal, so stderr is a TTY there.
  const feed = `(cat ${file}; sleep 1.5; cat ${file})`;
  const onTerminal = await run('script', ['-q', '-e', '-c', `${feed} | ${process.execPath} ${BUNDLE} report --json >/dev/null`, '/dev/null'], { maxBuffer: 1 << 24, timeout: 60_000 });
  t.match(onTerminal.stdout, /reading standard input: \d+ MB, [\d,]+ lines/, 'progress shown on a terminal');
  t.match(onTerminal.stdout, /\r\u001b\[K$/, 'and cleared at the end');
  const piped = await run('sh', ['-c', `${feed} | ${process.execPath} ${BUNDLE} report --json`], { maxBuffer: 1 << 26, timeout: 60_000 });
  t.equal(piped.stderr, '', 'nothing on a stderr that is not a terminal');
});
