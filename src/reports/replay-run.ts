/**
 * `replay --config NEW.conf`: every logged request re-decided under NEW.conf (src/reports/replay.ts),
 * counted as a from → to matrix, with top lists of the clients, PTR domains and HELO names
 * that would newly be rejected or deferred. `--json` streams each changed decision as it is
 * found inside one JSON document (`changed`: […], then the summary), so memory stays constant
 * however many change.
 */
import { getDomain } from 'tldts';
import type { Config } from '../config/config.js';
import { BAD_LINE_TEXT, wasThrottled, type BadLine, type DecisionRecord, type LoggedAction, type LogLine, type ReuseRecord } from './decision-record.js';
import { ChangeMatrix, type WindowOptions } from './report.js';
import { matrixLines, notReplayableLines, terminalSafe, topList } from './report-render.js';
import { actionLabel, answerLabel, Replayer } from './replay.js';
import { TopCounts } from './top-counts.js';

interface Newly {
  clients: TopCounts;
  domains: TopCounts;
  helo: TopCounts;
}

export class ReplayRun {
  readonly matrix = new ChangeMatrix();
  readonly bad = new Map<BadLine, number>();
  readonly newly = { rejected: newlyLists(), deferred: newlyLists() };
  requests = 0;
  outsideWindow = 0;
  private readonly replayer: Replayer;
  /** Where each changed decision goes as it is found (`--json`). */
  private readonly writeChange: ((change: Record<string, unknown>) => void) | undefined;

  constructor(
    config: Config,
    private readonly window: WindowOptions,
    writeChange?: (change: Record<string, unknown>) => void,
  ) {
    this.replayer = new Replayer(config);
    this.writeChange = writeChange;
  }

  add(line: LogLine, where?: { source: string; number: number }): void {
    if (line.kind === 'bad') {
      this.bad.set(line.why, (this.bad.get(line.why) ?? 0) + 1);
      return;
    }
    if (line.kind === 'other') return;
    if ((this.window.since !== undefined && line.time < this.window.since) || (this.window.until !== undefined && line.time >= this.window.until)) {
      this.outsideWindow++;
      return;
    }
    this.requests++;
    const outcome = this.replayer.replay(line);
    if (!outcome.ok) {
      this.matrix.skip(outcome.reason);
      return;
    }
    const after = outcome.decision;
    const before = answerLabel(line.action, line.reply);
    const now = answerLabel(after.action, after.reply);
    this.matrix.add(before, now);
    if (before === now) return;
    this.noteNewly(line, after.action, after.reply);
    this.writeChange?.({
      ...(where ? { input: where.source, line: where.number } : {}),
      time: line.timeText,
      client_address: line.clientAddress,
      instance: line.instance,
      kind: line.kind,
      before: { action: line.action, label: actionLabel(line.action), reply: line.reply },
      after: { action: after.action, label: actionLabel(after.action), reply: after.reply, result: after.result, how: after.how },
    });
  }

  private noteNewly(line: DecisionRecord | ReuseRecord, afterAction: LoggedAction, afterReply: string): void {
    const after = forTheSender(afterAction, afterReply);
    if (!(after === 'reject' || after === 'defer') || SEVERITY[after] <= SEVERITY[forTheSender(line.action, line.reply)]) return;
    const lists = this.newly[after === 'reject' ? 'rejected' : 'deferred'];
    lists.clients.add(line.clientAddress, line.time);
    if (line.kind !== 'decision') return;
    const name = line.ptr?.firstName;
    if (name !== undefined) lists.domains.add(getDomain(name, { allowPrivateDomains: true }) ?? name, line.time);
    lists.helo.add(line.heloName === '' ? '(none)' : line.heloName, line.time);
  }

  summary(top: number): Record<string, unknown> {
    const lists = (newly: Newly) => ({ clients: listed(newly.clients, top), domains: listed(newly.domains, top), helo_names: listed(newly.helo, top) });
    return {
      requests: this.requests,
      replayed: this.matrix.replayed,
      changed: this.matrix.changed,
      changes: Object.fromEntries(this.matrix.cells),
      not_replayable: Object.fromEntries(this.matrix.notReplayable),
      newly_rejected: lists(this.newly.rejected),
      newly_deferred: lists(this.newly.deferred),
      outside_window: this.outsideWindow,
      bad_lines: Object.fromEntries(this.bad),
    };
  }

  render(top: number, configSource: string): string {
    const out: string[] = [];
    const n = (value: number) => value.toLocaleString('en-US');
    out.push(`fcrdns-policyd replay under ${terminalSafe(configSource, 200)}: ${n(this.matrix.changed)} of ${n(this.matrix.replayed)} requests change action (${n(this.requests)} read)`);
    out.push(...matrixLines(Object.fromEntries(this.matrix.cells)), ...notReplayableLines(Object.fromEntries(this.matrix.notReplayable)));
    for (const [label, newly] of [['newly rejected', this.newly.rejected], ['newly deferred', this.newly.deferred]] as const) {
      const clients = newly.clients.top(top);
      if (clients.length === 0) continue;
      out.push('', `${label[0]?.toUpperCase()}${label.slice(1)}:`);
      out.push(...topList('clients', listed(newly.clients, top)), ...topList('PTR domains', listed(newly.domains, top)), ...topList('HELO names', listed(newly.helo, top)));
    }
    const bad = [...this.bad];
    if (bad.length > 0) out.push('', 'Lines skipped:', ...bad.map(([why, count]) => `  ${n(count).padStart(10)}  ${BAD_LINE_TEXT[why]}`));
    return `${out.join('\n')}\n`;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const SEVERITY = { dunno: 0, warn: 1, throttle: 1.5, defer: 2, reject: 3 } as const;

/**
 * What an answer is for the sender: a throttled class whose network's budget was spent was told
 * 450, as a deferred one is (a what-if that turns warn into throttle defers those senders).
 */
function forTheSender(action: LoggedAction, reply: string): keyof typeof SEVERITY {
  return wasThrottled(action, reply) ? 'defer' : action;
}
/** The n most frequent keys, as the JSON document and the text show them. */
const listed = (counts: TopCounts, n: number) => counts.top(n).map((entry) => ({ key: entry.key, count: entry.count, last_seen: iso(entry.lastSeen) }));

function newlyLists(): Newly {
  return { clients: new TopCounts(), domains: new TopCounts(), helo: new TopCounts() };
}
