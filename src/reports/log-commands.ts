/**
 * The `report` and `replay` commands: read log lines (src/reports/log-input.ts), classify them
 * (src/reports/decision-record.ts), feed the aggregate, print. Exit 0 unless no decision line was found
 * at all (1, with a message saying what was read instead); usage errors 64.
 */
import type { Readable } from 'node:stream';
import type { Config } from '../config/config.js';
import { DEFAULT_TAG, parseLogLine, type ParseOptions } from './decision-record.js';
import { readLogLines } from './log-input.js';
import { ReportBuilder, type WindowOptions } from './report.js';
import { jsonSafe, renderReport, terminalSafe } from './report-render.js';
import { ReplayRun } from './replay-run.js';

export interface LogCommandOptions {
  files: readonly string[];
  since?: string | undefined;
  until?: string | undefined;
  json: boolean;
  ascii: boolean;
  top?: string | undefined;
  /** The syslog identifier whose prefixed lines are the daemon's (default fcrdns-policyd). */
  tag?: string | undefined;
}

export interface LogCommandIo {
  out(text: string): void;
  err(text: string): void;
  stdin?: Readable;
  /** Progress lines only when standard error is a terminal. */
  errIsTerminal?: boolean;
  now?: () => number;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `2026-11-30`, `2026-11-30T06:00:00Z`, or a time ago: `90m`, `24h`, `7d`, `2w`. */
export function parseWhen(text: string, now: number): number | undefined {
  const ago = /^(\d+)([smhdw])$/.exec(text);
  if (ago) return now - Number(ago[1]) * (UNITS[ago[2] ?? 's'] ?? 1000);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : time;
}

export type UsageProblem = { problem: string };

/** The window and list length, or a usage problem. */
export function logOptions(options: LogCommandOptions, now: number): { window: WindowOptions; top: number; parse: ParseOptions } | UsageProblem {
  const window: WindowOptions = {};
  for (const key of ['since', 'until'] as const) {
    const text = options[key];
    if (text === undefined) continue;
    const time = parseWhen(text, now);
    if (time === undefined) return { problem: `--${key} wants a date (2026-11-30, 2026-11-30T06:00:00Z) or a time ago (90m, 24h, 7d): ${JSON.stringify(text)}` };
    window[key] = time;
  }
  const top = options.top === undefined ? 10 : Number(options.top);
  if (!Number.isInteger(top) || top < 1 || top > 1000) return { problem: `--top wants a number from 1 to 1000: ${JSON.stringify(options.top)}` };
  const tag = options.tag ?? DEFAULT_TAG;
  // A syslog tag as syslog(3) and journald write it: no blanks, brackets or colons.
  if (!/^[^\s[\]:]{1,64}$/.test(tag)) return { problem: `--tag wants a syslog identifier (no blanks, brackets or colons, at most 64 characters): ${JSON.stringify(tag)}` };
  return { window, top, parse: { tag, now } };
}

async function readAll(
  options: LogCommandOptions,
  io: LogCommandIo,
  parse: ParseOptions,
  add: (line: ReturnType<typeof parseLogLine>, where: { source: string; number: number }) => void,
): Promise<number> {
  let shown = false;
  let decisions = 0;
  for await (const batch of readLogLines(options.files, {
    ...(io.stdin ? { stdin: io.stdin } : {}),
    ...(io.errIsTerminal
      ? {
          progress: (source: string, bytes: number, lines: number) => {
            shown = true;
            io.err(`\r\x1b[Kreading ${terminalSafe(source, 60)}: ${(bytes / 2 ** 20).toFixed(0)} MB, ${lines.toLocaleString('en-US')} lines`);
          },
        }
      : {}),
    unreadable: (source, why) => io.err(`fcrdns-policyd: cannot read ${terminalSafe(source, 200)}: ${terminalSafe(why, 200)}\n`),
  })) {
    for (const line of batch) {
      if (!line.tooLong && line.text.trim() === '') continue;
      const parsed = line.tooLong ? ({ kind: 'bad', why: 'too_long' } as const) : parseLogLine(line.text, line.complete, parse);
      if (parsed.kind === 'decision' || parsed.kind === 'reuse') decisions++;
      add(parsed, line);
    }
  }
  if (shown) io.err('\r\x1b[K');
  return decisions;
}

function nothingFound(io: LogCommandIo, read: string): number {
  io.err(
    `fcrdns-policyd: no decision line found in ${read}. Give the daemon's JSON log: files (plain or .gz), or standard input, ` +
      'e.g. journalctl -u fcrdns-policyd -o cat | fcrdns-policyd report\n',
  );
  return 1;
}

export async function runReport(options: LogCommandOptions, io: LogCommandIo): Promise<number> {
  const parsed = logOptions(options, (io.now ?? Date.now)());
  if ('problem' in parsed) {
    io.err(`fcrdns-policyd: ${parsed.problem}\n`);
    return 64;
  }
  const builder = new ReportBuilder(parsed.window);
  const decisions = await readAll(options, io, parsed.parse, (line) => builder.add(line));
  if (decisions === 0) return nothingFound(io, `${builder.lines.toLocaleString('en-US')} lines`);
  const data = builder.result(parsed.top, options.files.length === 0 ? ['-'] : options.files);
  io.out(options.json ? `${jsonSafe(JSON.stringify(data, null, 2))}\n` : renderReport(data, { ascii: options.ascii }));
  return 0;
}

export async function runReplay(config: Config, options: LogCommandOptions, io: LogCommandIo): Promise<number> {
  const parsed = logOptions(options, (io.now ?? Date.now)());
  if ('problem' in parsed) {
    io.err(`fcrdns-policyd: ${parsed.problem}\n`);
    return 64;
  }
  let first = true;
  if (options.json) io.out(`{"schema":1,"config":${jsonSafe(JSON.stringify(config.source))},"changed":[`);
  const run = new ReplayRun(
    config,
    parsed.window,
    options.json
      ? (change) => {
          io.out(`${first ? '\n' : ',\n'}${jsonSafe(JSON.stringify(change))}`);
          first = false;
        }
      : undefined,
  );
  const decisions = await readAll(options, io, parsed.parse, (line, where) => run.add(line, where));
  if (options.json) io.out(`${first ? '' : '\n'}],"summary":${jsonSafe(JSON.stringify(run.summary(parsed.top)))}}\n`);
  if (decisions === 0) return nothingFound(io, 'the input');
  if (!options.json) io.out(run.render(parsed.top, config.source));
  return 0;
}
