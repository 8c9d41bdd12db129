/**
 * `report` and `replay` for a terminal: tables, a chart of the hours (or days) in block
 * characters (`--ascii`: plain ASCII), the top lists. Every string that came from a log line
 * goes through `terminalSafe` first: a HELO name with escape sequences must not move the
 * cursor or recolour the screen of the administrator reading it.
 */
import { BAD_LINE_TEXT, type BadLine } from './decision-record.js';
import type { ReportData } from './report.js';
import { NOT_REPLAYABLE_TEXT, type NotReplayable } from './replay.js';

/**
 * Control characters (C0, DEL, C1), line and paragraph separators and the bidirectional
 * overrides shown as escapes; long values cut. Nothing else from a log reaches the terminal.
 */
export function terminalSafe(text: string, max = 100): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * JSON text (from JSON.stringify) with the characters terminalSafe shows as escapes written as
 * `\u` escapes too: C1 controls, DEL, U+2028/2029, the bidirectional overrides and isolates, the
 * BOM. JSON.stringify escapes only C0 and lone surrogates, and a report piped to `less` or a
 * terminal would obey the rest. These characters only occur inside strings, so the document
 * keeps its meaning.
 */
export function jsonSafe(json: string): string {
  return json.replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const number = (value: number) => value.toLocaleString('en-US');
const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
const pad = (text: string, width: number) => (text.length >= width ? text : text + ' '.repeat(width - text.length));
const padLeft = (text: string, width: number) => (text.length >= width ? text : ' '.repeat(width - text.length) + text);

const BLOCKS = ' ▁▂▃▄▅▆▇█';
const ASCII_LEVELS = ' .:-=+*#%@';

/** One series as a row of levels, scaled to its own maximum (zero is blank). */
function sparkline(values: readonly number[], ascii: boolean): string {
  const levels = ascii ? ASCII_LEVELS : BLOCKS;
  const max = Math.max(0, ...values);
  return values
    .map((value) => (value === 0 || max === 0 ? ' ' : levels[Math.max(1, Math.round((value / max) * (levels.length - 1)))] ?? ' '))
    .join('');
}

function chart(data: ReportData, ascii: boolean): string[] {
  const { buckets, bucket_hours: width } = data.timeline;
  if (buckets.length === 0) return [];
  const unit = width === 1 ? 'hour' : width === 24 ? 'day' : `${width / 24} days`;
  const rows: Array<[string, keyof (typeof buckets)[number]]> = [
    ['accepted', 'accepted'],
    ['would-be-rejected (warn)', 'would_reject'],
    ['deferred (450)', 'deferred'],
    ['rejected (550)', 'rejected'],
  ];
  const lines = [`Per ${unit}, ${buckets[0]?.start.slice(0, width === 1 ? 13 : 10)} … ${buckets.at(-1)?.start.slice(0, width === 1 ? 13 : 10)} (each row scaled to its own peak):`];
  const edge = ascii ? '|' : '│';
  for (const [label, key] of rows) {
    const values = buckets.map((bucket) => bucket[key] as number);
    const peak = Math.max(0, ...values);
    lines.push(`  ${pad(label, 26)}${edge}${sparkline(values, ascii)}${edge} peak ${number(peak)}`);
  }
  return lines;
}

/** A top list (clients, domains, HELO names) with counts and when each was last seen. */
export function topList(title: string, entries: ReadonlyArray<{ key: string; count: number; last_seen: string | null }>): string[] {
  if (entries.length === 0) return [];
  const width = Math.max(...entries.map((entry) => terminalSafe(entry.key, 60).length), 10);
  return [
    `    ${title}:`,
    ...entries.map((entry) => `      ${pad(terminalSafe(entry.key, 60), width)}  ${padLeft(number(entry.count), 8)}  last ${entry.last_seen ?? '-'}`),
  ];
}

function badLines(bad: Partial<Record<BadLine, number>>): string[] {
  const entries = Object.entries(bad) as Array<[BadLine, number]>;
  if (entries.length === 0) return [];
  return ['Lines skipped:', ...entries.map(([why, count]) => `  ${padLeft(number(count), 10)}  ${BAD_LINE_TEXT[why]}`)];
}

export function notReplayableLines(counts: Readonly<Record<string, number>>, indent = '  '): string[] {
  return Object.entries(counts).map(([why, count]) => `${indent}${padLeft(number(count), 10)}  not replayable: ${NOT_REPLAYABLE_TEXT[why as NotReplayable] ?? why}`);
}

export function matrixLines(changes: Readonly<Record<string, number>>, indent = '  '): string[] {
  const entries = Object.entries(changes).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return [`${indent}no message would change action`];
  return entries.map(([change, count]) => `${indent}${pad(change, 16)} ${padLeft(number(count), 10)}`);
}

export function renderReport(data: ReportData, options: { ascii: boolean }): string {
  const out: string[] = [];
  out.push(`fcrdns-policyd report: ${number(data.messages)} messages (${number(data.recipients)} recipients), ${data.first ?? '-'} … ${data.last ?? '-'}`);
  if (data.window.since || data.window.until) out.push(`  window: ${data.window.since ?? 'start'} … ${data.window.until ?? 'end'} (${number(data.lines.outside_window)} lines outside it)`);
  if (data.logged_modes.length > 0) out.push(`  written in mode: ${data.logged_modes.map((mode) => terminalSafe(mode)).join(', ')}`);
  out.push('');
  out.push('By action:                    messages            recipients');
  for (const [action, counts] of Object.entries(data.actions)) {
    out.push(`  ${pad(action, 10)} ${padLeft(number(counts.messages), 14)} ${padLeft(percent(counts.share), 7)}   ${padLeft(number(counts.recipients), 14)}`);
  }
  out.push('', 'By result:                    messages');
  for (const [result, counts] of Object.entries(data.results)) out.push(`  ${pad(terminalSafe(result, 40), 26)} ${padLeft(number(counts.messages), 12)} ${padLeft(percent(counts.share), 7)}`);
  out.push('', ...chart(data, options.ascii));
  const t = data.temperror;
  out.push('', `Temporary DNS failures: ${number(t.messages)} messages, ${percent(t.share)} (PTR lookup ${number(t.stages.ptr)}, forward only ${number(t.stages.forward)})`);
  for (const [code, count] of Object.entries(t.causes)) out.push(`  ${pad(terminalSafe(code, 30), 20)} ${padLeft(number(count), 10)}`);
  if (t.share >= 0.05) out.push('  ! a large temperror share points at the resolver (dns_servers), not at senders: check it first');
  const pressure = Object.entries(t.daemon_pressure);
  if (pressure.length > 0) {
    out.push(`  daemon pressure (answered without DNS, not sender trouble): ${pressure.map(([code, count]) => `${code} ${number(count)}`).join(', ')}`);
  }
  out.push('', `Duration: p50 ${data.duration_ms.p50} ms, p99 ${data.duration_ms.p99} ms, max ${data.duration_ms.max} ms; answered from cache ${percent(data.cached_share)}`);
  const failing = Object.entries(data.failing);
  if (failing.length > 0) {
    out.push('', 'Failing senders, by class:');
    for (const [kind, lists] of failing) {
      out.push(`  ${kind}${lists.approximate ? ' (counts approximate: many distinct values)' : ''}`);
      out.push(...topList('clients', lists.clients), ...topList('PTR domains', lists.domains), ...topList('HELO names', lists.helo_names));
    }
  }
  const tighter = data.logged_modes.length === 0 || data.logged_modes.some((mode) => mode === 'monitor' || mode === 'soft');
  if (tighter) {
    for (const mode of ['soft', 'strict'] as const) {
      const preset = data.presets[mode];
      if (!preset) continue;
      out.push('', `Under mode = ${mode} (the log's other settings, no *_action overrides): ${number(preset.changed)} of ${number(preset.replayed)} requests would change action`);
      out.push(...matrixLines(preset.changes), ...notReplayableLines(preset.not_replayable));
    }
  }
  const bad = badLines(data.lines.bad);
  if (bad.length > 0) out.push('', ...bad);
  return `${out.join('\n')}\n`;
}
