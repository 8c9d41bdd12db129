/**
 * `report`: the figures an administrator reads before tightening the mode, gathered from the
 * decision log in one streaming pass with bounded memory (TopCounts, DurationHistogram, one
 * counter per hour). See src/reports/report-render.ts for how they are shown and docs/logs.md "report" for
 * the JSON schema.
 */
import { getDomain } from 'tldts';
import { ConfigError, parseConfig, type Config } from '../config/config.js';
import { wasThrottled, type BadLine, type DecisionRecord, type LogLine, type LoggedAction, type ReuseRecord } from './decision-record.js';
import { LIMITS } from '../config/limits.js';
import { answerLabel, MessageMemory, Replayer, type NotReplayable } from './replay.js';
import { DurationHistogram, TopCounts, type TopEntry } from './top-counts.js';

/** The classes a sender fails in, each with its own top lists. */
export const FAILING_CLASSES = ['no_ptr', 'no_forward', 'mismatch', 'temperror', 'generic'] as const;
type FailingClass = (typeof FAILING_CLASSES)[number];

/** Daemon pressure, not sender trouble: requests answered without DNS (SECURITY.md). */
const PRESSURE_CODES: readonly string[] = ['EHEAPFULL', 'EBUSY'];
const HOUR_MS = 3_600_000;

export interface WindowOptions {
  /** Epoch ms; lines before it are not counted. */
  since?: number;
  /** Epoch ms; lines at or after it are not counted. */
  until?: number;
}

interface ActionCounts {
  messages: number;
  recipients: number;
}

/** A from → to matrix of actions (labels: DUNNO, WARN, 450, 550), with what could not be replayed. */
export class ChangeMatrix {
  readonly cells = new Map<string, number>();
  readonly notReplayable = new Map<NotReplayable, number>();
  replayed = 0;

  /** From and to as answerLabel() names them (replay.ts). */
  add(from: string, to: string): void {
    this.replayed++;
    if (from === to) return;
    const key = `${from} → ${to}`;
    this.cells.set(key, (this.cells.get(key) ?? 0) + 1);
  }

  skip(reason: NotReplayable): void {
    this.notReplayable.set(reason, (this.notReplayable.get(reason) ?? 0) + 1);
  }

  get changed(): number {
    let total = 0;
    for (const count of this.cells.values()) total += count;
    return total;
  }
}

/** The config of the log (from its last `started` / `reloaded` line) with another mode and no *_action overrides. */
export function presetOf(logged: Readonly<Record<string, string>> | undefined, mode: 'soft' | 'strict'): Config {
  const ignored = new Set(['listen', 'listen_mode', 'metrics_listen', 'dns_servers', 'mode', 'no_ptr_action', 'no_forward_action', 'mismatch_action', 'temperror_action']);
  const lines = Object.entries(logged ?? {})
    .filter(([key]) => !ignored.has(key))
    .map(([key, value]) => `${key} = ${value}`);
  try {
    return parseConfig(`${lines.join('\n')}\nmode = ${mode}\n`, `the log's config, mode = ${mode}`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return parseConfig(`mode = ${mode}\n`, `defaults, mode = ${mode}`);
  }
}

export class ReportBuilder {
  readonly bad = new Map<BadLine, number>();
  lines = 0;
  otherMessages = 0;
  outsideWindow = 0;
  messages = 0;
  recipients = 0;
  first = Number.POSITIVE_INFINITY;
  last = Number.NEGATIVE_INFINITY;
  readonly byResult = new Map<string, number>();
  /** By how a request was answered: a throttle action that passed apart from one whose budget was spent. */
  readonly byAction = new Map<LoggedAction | 'throttled', ActionCounts>();
  /** Per hour (epoch hour): accepted, deferred, rejected, would-be-rejected (warn). */
  readonly hours = new Map<number, [number, number, number, number]>();
  readonly failing = new Map<FailingClass, { clients: TopCounts; domains: TopCounts; helo: TopCounts }>();
  readonly temperrorCauses = new Map<string, number>();
  readonly temperrorStages = { ptr: 0, forward: 0 };
  readonly pressure = new Map<string, number>();
  temperrors = 0;
  cached = 0;
  readonly durations = new DurationHistogram();
  /** Modes the log was written in (from its started / reloaded lines). */
  readonly modes = new Set<string>();
  readonly presets = { soft: new ChangeMatrix(), strict: new ChangeMatrix() };
  private replayers: { soft: Replayer; strict: Replayer } | undefined;
  private loggedConfig: Readonly<Record<string, string>> | undefined;

  constructor(private readonly window: WindowOptions = {}) {}

  add(line: LogLine): void {
    this.lines++;
    switch (line.kind) {
      case 'bad':
        this.bad.set(line.why, (this.bad.get(line.why) ?? 0) + 1);
        return;
      case 'other':
        this.otherMessages++;
        if (line.config && (line.msg === 'started' || line.msg === 'reloaded')) {
          this.loggedConfig = line.config;
          // Only the modes there are: a forged line must not grow the set.
          if (MODES.includes(line.config.mode ?? '')) this.modes.add(line.config.mode as string);
          this.replayers = undefined;
        }
        return;
      default:
        if ((this.window.since !== undefined && line.time < this.window.since) || (this.window.until !== undefined && line.time >= this.window.until)) {
          this.outsideWindow++;
          return;
        }
        this.request(line);
    }
  }

  private request(line: DecisionRecord | ReuseRecord): void {
    if (line.time < this.first) this.first = line.time;
    if (line.time > this.last) this.last = line.time;
    this.recipients++;
    const answered = wasThrottled(line.action, line.reply) ? 'throttled' : line.action;
    const actions = this.byAction.get(answered) ?? { messages: 0, recipients: 0 };
    actions.recipients++;
    this.byAction.set(answered, actions);
    this.replayPresets(line);
    if (line.kind === 'reuse') return;
    this.messages++;
    actions.messages++;
    countCode(this.byResult, line.result === 'skipped' ? `skipped (${line.reason ?? 'unknown'})` : line.result);
    const hour = Math.floor(line.time / HOUR_MS);
    const bucket = this.hours.get(hour) ?? [0, 0, 0, 0];
    bucket[line.action === 'dunno' ? 0 : line.action === 'defer' ? 1 : line.action === 'reject' ? 2 : 3]++;
    this.hours.set(hour, bucket);
    if (line.cached) this.cached++;
    this.durations.add(line.durationMs);
    if (line.result === 'temperror') this.temperror(line);
    if ((FAILING_CLASSES as readonly string[]).includes(line.result) && !PRESSURE_CODES.includes(line.ptr?.code ?? '')) this.failingClient(line);
  }

  private temperror(line: DecisionRecord): void {
    const code = line.ptr?.code;
    if (code !== undefined && PRESSURE_CODES.includes(code)) {
      countCode(this.pressure, code);
      return;
    }
    this.temperrors++;
    if (line.temperrorStage === 'forward') this.temperrorStages.forward++;
    else this.temperrorStages.ptr++;
    const codes = line.temperrorStage === 'forward' ? line.forwardTemporaryCodes : [code ?? 'unknown'];
    for (const cause of codes) countCode(this.temperrorCauses, cause);
  }

  private failingClient(line: DecisionRecord): void {
    const kind = line.result as FailingClass;
    let lists = this.failing.get(kind);
    if (!lists) {
      lists = { clients: new TopCounts(), domains: new TopCounts(), helo: new TopCounts() };
      this.failing.set(kind, lists);
    }
    lists.clients.add(line.clientAddress, line.time);
    const name = line.ptr?.firstName;
    if (name !== undefined) lists.domains.add(getDomain(name, { allowPrivateDomains: true }) ?? name, line.time);
    lists.helo.add(line.heloName === '' ? '(none)' : line.heloName, line.time);
  }

  private replayPresets(line: DecisionRecord | ReuseRecord): void {
    if (!this.replayers) {
      const messages = new MessageMemory();
      this.replayers = { soft: new Replayer(presetOf(this.loggedConfig, 'soft'), messages), strict: new Replayer(presetOf(this.loggedConfig, 'strict'), messages) };
    }
    for (const mode of ['soft', 'strict'] as const) {
      const outcome = this.replayers[mode].replay(line);
      if (outcome.ok) this.presets[mode].add(answerLabel(line.action, line.reply), answerLabel(outcome.decision.action, outcome.decision.reply));
      else this.presets[mode].skip(outcome.reason);
    }
  }

  /** The figures as the JSON document of `report --json` (schema 1, docs/logs.md). */
  result(top: number, inputs: readonly string[]): ReportData {
    const share = (part: number, whole: number) => (whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000);
    const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : null);
    const actions = Object.fromEntries(
      (['dunno', 'warn', 'throttle', 'throttled', 'defer', 'reject'] as const).map((action) => {
        const counts = this.byAction.get(action) ?? { messages: 0, recipients: 0 };
        return [action, { ...counts, share: share(counts.messages, this.messages) }];
      }),
    );
    const topList = (counts: TopCounts) => counts.top(top).map((entry: TopEntry) => ({ key: entry.key, count: entry.count, last_seen: iso(entry.lastSeen) }));
    return {
      schema: 1,
      inputs: [...inputs],
      window: { since: this.window.since !== undefined ? iso(this.window.since) : null, until: this.window.until !== undefined ? iso(this.window.until) : null },
      first: iso(this.first),
      last: iso(this.last),
      lines: {
        read: this.lines,
        decisions: this.messages,
        reused: this.recipients - this.messages,
        other_messages: this.otherMessages,
        outside_window: this.outsideWindow,
        bad: Object.fromEntries([...this.bad].map(([why, count]) => [why, count])),
      },
      messages: this.messages,
      recipients: this.recipients,
      results: Object.fromEntries([...this.byResult].sort((a, b) => b[1] - a[1]).map(([result, count]) => [result, { messages: count, share: share(count, this.messages) }])),
      actions,
      timeline: this.timeline(),
      failing: Object.fromEntries(
        [...this.failing].map(([kind, lists]) => [
          kind,
          { clients: topList(lists.clients), domains: topList(lists.domains), helo_names: topList(lists.helo), approximate: lists.clients.approximate || lists.domains.approximate || lists.helo.approximate },
        ]),
      ),
      temperror: {
        messages: this.temperrors,
        share: share(this.temperrors, this.messages),
        stages: { ...this.temperrorStages },
        causes: Object.fromEntries([...this.temperrorCauses].sort((a, b) => b[1] - a[1])),
        daemon_pressure: Object.fromEntries(this.pressure),
      },
      duration_ms: { p50: round(this.durations.percentile(50)), p99: round(this.durations.percentile(99)), max: round(this.durations.max) },
      cached_share: share(this.cached, this.messages),
      logged_modes: [...this.modes],
      presets: Object.fromEntries(
        (['soft', 'strict'] as const).map((mode) => {
          const matrix = this.presets[mode];
          return [mode, { replayed: matrix.replayed, changed: matrix.changed, changes: Object.fromEntries(matrix.cells), not_replayable: Object.fromEntries(matrix.notReplayable) }];
        }),
      ),
    };
  }

  /** Hourly buckets, or daily past three days (wider still past 120 days), oldest first. */
  private timeline(): ReportData['timeline'] {
    if (this.hours.size === 0) return { bucket_hours: 1, buckets: [] };
    const firstHour = Math.floor(this.first / HOUR_MS);
    const lastHour = Math.floor(this.last / HOUR_MS);
    const span = lastHour - firstHour + 1;
    const width = span <= 72 ? 1 : Math.max(24, Math.ceil(span / 120 / 24) * 24);
    const start = width === 1 ? firstHour : Math.floor(firstHour / 24) * 24;
    const count = Math.floor((lastHour - start) / width) + 1;
    const buckets = Array.from({ length: count }, (_, i) => ({ start: new Date((start + i * width) * HOUR_MS).toISOString(), accepted: 0, deferred: 0, rejected: 0, would_reject: 0 }));
    for (const [hour, [accepted, deferred, rejected, wouldReject]] of this.hours) {
      const bucket = buckets[Math.floor((hour - start) / width)];
      if (!bucket) continue;
      bucket.accepted += accepted;
      bucket.deferred += deferred;
      bucket.rejected += rejected;
      bucket.would_reject += wouldReject;
    }
    return { bucket_hours: width, buckets };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
const MODES: readonly string[] = ['monitor', 'soft', 'strict'];

/**
 * Count one code (a resolver error, a skip reason) in a map of at most LIMITS.maxReportCodes
 * keys; past it under `other`: each is at most LIMITS.maxLogCodeChars long, but a forged log
 * could bring a new one on every line.
 */
function countCode(counts: Map<string, number>, code: string): void {
  const key = counts.has(code) || counts.size < LIMITS.maxReportCodes ? code : 'other';
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export interface ReportData {
  schema: 1;
  inputs: string[];
  window: { since: string | null; until: string | null };
  first: string | null;
  last: string | null;
  lines: { read: number; decisions: number; reused: number; other_messages: number; outside_window: number; bad: Partial<Record<BadLine, number>> };
  messages: number;
  recipients: number;
  results: Record<string, { messages: number; share: number }>;
  actions: Record<string, { messages: number; recipients: number; share: number }>;
  timeline: { bucket_hours: number; buckets: Array<{ start: string; accepted: number; deferred: number; rejected: number; would_reject: number }> };
  failing: Record<string, { clients: ListEntry[]; domains: ListEntry[]; helo_names: ListEntry[]; approximate: boolean }>;
  temperror: { messages: number; share: number; stages: { ptr: number; forward: number }; causes: Record<string, number>; daemon_pressure: Record<string, number> };
  duration_ms: { p50: number; p99: number; max: number };
  cached_share: number;
  logged_modes: string[];
  presets: Record<string, { replayed: number; changed: number; changes: Record<string, number>; not_replayable: Record<string, number> }>;
}

interface ListEntry {
  key: string;
  count: number;
  last_seen: string | null;
}
