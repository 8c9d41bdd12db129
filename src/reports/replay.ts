/**
 * Replay: re-decide logged requests under another configuration, with the daemon's own code —
 * the exemptions and the per-message memory in the pipeline's order, then `decideClient` (generic
 * names, pass_names, the decision table, the Authentication-Results header) — from what each
 * line records, without any DNS query. A line that lacks an input the new configuration needs is
 * "not replayable" with the reason, never guessed.
 *
 * What replay holds fixed: the lookups themselves. Settings that change which queries are made
 * or how they are cut (dns_*, max_ptr_names, the cache) are taken as they were when the log was
 * written: the PTR names and forward answers are the logged ones.
 */
import type { Config } from '../config/config.js';
import { wasThrottled, type DecisionRecord, type LoggedAction, type ReuseRecord } from './decision-record.js';
import { gcraTake, throttleKey, throttleParamsOf, type GcraParams } from '../judge/throttle.js';
import { FifoMap } from '../util/fifo-map.js';
import { heloLookupUsed } from '../judge/helo.js';
import { parseClientIp, type ClientIp } from '../util/ip.js';
import type { IprevClass, IprevResult } from '../dns/iprev.js';
import { decideClient, policyFor } from '../judge/judgement.js';
import { LIMITS } from '../config/limits.js';
import { findExemption, type HeloStatus, type PolicySettings, type Verdict } from '../judge/policy.js';

export type NotReplayable =
  /** A line of a version before 0.2: no `recipient` / `authenticated` (pass_recipients, skip_authenticated). */
  | 'older_line'
  /** The line's request fields were cut to keep it under 4 KiB. */
  | 'request_fields_cut'
  /** Confirmed names past the first were cut to keep it under 4 KiB (pass_names may need them). */
  | 'confirmed_names_cut'
  /** Exempt when logged, so never looked up; judged under the new configuration. */
  | 'exempt_when_logged'
  /** helo_mismatch_action was dunno when logged, so the HELO name was never looked up. */
  | 'helo_not_looked_up'
  /** A later recipient whose message's decision is not in the input (rotated away, or cut). */
  | 'message_not_in_input'
  /** A client_address that is no address (a line not written by the daemon). */
  | 'bad_client_address';

export const NOT_REPLAYABLE_TEXT: Record<NotReplayable, string> = {
  older_line: 'written by a version before 0.2 (no recipient / authenticated fields)',
  request_fields_cut: 'request fields cut in the log (line over 4 KiB)',
  confirmed_names_cut: 'confirmed names cut in the log (line over 4 KiB)',
  exempt_when_logged: 'exempt when logged (not looked up), judged under the new config',
  helo_not_looked_up: 'HELO name not looked up when logged (helo_mismatch_action = dunno), needed now',
  message_not_in_input: "a later recipient whose message's decision is not in the input",
  bad_client_address: 'client_address is not an address',
};

export interface ReplayedDecision {
  readonly action: LoggedAction;
  readonly reply: string;
  /** The result as the new daemon would log and count it (`skipped`, `generic`, an iprev class). */
  readonly result: string;
  /** How it was reached: judged from the logged DNS data, exempt, or the message's earlier verdict. */
  readonly how: 'judged' | 'exempt' | 'reused';
}

export type ReplayOutcome = { readonly ok: true; readonly decision: ReplayedDecision } | { readonly ok: false; readonly reason: NotReplayable };

const IPREV_CLASSES: readonly string[] = ['pass', 'no_ptr', 'no_forward', 'mismatch', 'temperror'];
/** Statuses that are known without DNS; `resolves`, `mismatch`, `temperror` came from a lookup. */
const HELO_FROM_LOOKUP: readonly HeloStatus[] = ['resolves', 'mismatch', 'temperror'];

/** What a later recipient of a message needs of its decision line, to be judged afresh. */
export interface MessageData {
  readonly clientAddress: string;
  readonly heloName: string;
  readonly result: string;
  readonly temperrorStage?: 'ptr' | 'forward';
  readonly ptrCode?: string;
  readonly helo?: HeloStatus;
  readonly confirmedNames: readonly string[];
}

function messageDataOf(line: DecisionRecord): MessageData {
  return {
    clientAddress: line.clientAddress,
    heloName: line.heloName,
    result: line.result,
    ...(line.temperrorStage ? { temperrorStage: line.temperrorStage } : {}),
    ...(line.ptr?.code !== undefined ? { ptrCode: line.ptr.code } : {}),
    ...(line.helo !== undefined ? { helo: line.helo } : {}),
    confirmedNames: line.confirmedNames,
  };
}

/** Heap bytes of one kept message, roughly: its strings (one byte a character, plus headers) and the objects. */
function messageBytes(key: string, data: MessageData): number {
  let bytes = 160 + key.length + data.clientAddress.length + data.heloName.length;
  for (const name of data.confirmedNames) bytes += 24 + name.length;
  return bytes;
}

/**
 * The logged DNS data of recent messages, keyed by instance, first in first out, bounded in
 * count (LIMITS.instanceCacheSize, as the daemon's per-message memory) and in bytes
 * (LIMITS.replayMessageBytes): lines of maximal names cannot fill the heap.
 */
export class MessageMemory {
  private readonly entries = new Map<string, { data: MessageData; bytes: number }>();
  /** Keys in insertion order from `head` on; the front is dropped in batches. */
  private order: string[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly capacity = LIMITS.instanceCacheSize,
    private readonly budget = LIMITS.replayMessageBytes,
  ) {}

  get(key: string): MessageData | undefined {
    return this.entries.get(key)?.data;
  }

  set(key: string, line: DecisionRecord): void {
    const data = messageDataOf(line);
    const bytes = messageBytes(key, data);
    const old = this.entries.get(key);
    if (old) this.bytes -= old.bytes;
    else this.order.push(key);
    this.entries.set(key, { data, bytes });
    this.bytes += bytes;
    while ((this.entries.size > this.capacity || this.bytes > this.budget) && this.head < this.order.length) this.dropOldest();
  }

  private dropOldest(): void {
    const key = this.order[this.head++] as string;
    const entry = this.entries.get(key);
    if (entry) this.bytes -= entry.bytes;
    this.entries.delete(key);
    // Compact the queue once its dropped front is as long as what is left.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

/** The iprev result a decision line records (generic is a pass that looked dynamic). */
function loggedIprev(data: MessageData): IprevResult | undefined {
  const result = data.result === 'generic' ? 'pass' : data.result;
  if (!IPREV_CLASSES.includes(result)) return undefined;
  // decideClient reads the class, the stage and the confirmed names; the rest is not logged whole.
  return {
    result: result as IprevClass,
    ...(data.temperrorStage ? { temperrorStage: data.temperrorStage } : {}),
    reverseName: '',
    ptr: { outcome: 'answer', ...(data.ptrCode !== undefined ? { code: data.ptrCode } : {}), names: [], ignored: [] },
    forward: [],
    confirmedNames: data.confirmedNames,
  };
}

/**
 * Replays a log's requests in order under one configuration: holds, like the daemon, the verdict
 * of each message (instance) for its later recipients, and the logged DNS data of each message
 * for a later recipient that the new configuration judges afresh. Both bounded as the daemon's
 * per-message memory is.
 */
export class Replayer {
  private readonly policy: PolicySettings;
  private readonly verdicts = new FifoMap<{ client: string; verdict: Verdict }>(LIMITS.instanceCacheSize);
  private readonly messageData: MessageMemory;
  /** Each network's GCRA timestamp, as the daemon's throttle store would hold it. */
  private readonly budgets = new FifoMap<number>(LIMITS.throttleMemoryKeys);
  private readonly throttleParams: GcraParams;

  /** `messageData` may be shared by replayers of the same log (report replays two presets). */
  constructor(
    private readonly config: Config,
    messageData = new MessageMemory(),
  ) {
    this.policy = policyFor(config);
    this.messageData = messageData;
    this.throttleParams = throttleParamsOf(config);
  }

  replay(line: DecisionRecord | ReuseRecord): ReplayOutcome {
    if (line.recipient === undefined || line.authenticated === undefined) return { ok: false, reason: 'older_line' };
    if (line.kind === 'decision' && line.requestFieldsCut) return { ok: false, reason: 'request_fields_cut' };
    if (line.kind === 'decision' && line.confirmedNamesCut) return { ok: false, reason: 'confirmed_names_cut' };
    const client = parseClientIp(line.clientAddress);
    if (!client) return { ok: false, reason: 'bad_client_address' };
    if (line.kind === 'decision' && line.instance !== '' && line.result !== 'skipped') this.messageData.set(line.instance, line);

    // The pipeline's order (src/daemon/pipeline.ts): exemptions, then the message's verdict, then judging.
    const request = { client, recipient: line.recipient, saslUsername: line.authenticated ? 'yes' : '' };
    if (findExemption(request, this.config)) return { ok: true, decision: { action: 'dunno', reply: 'DUNNO', result: 'skipped', how: 'exempt' } };
    if (line.instance !== '') {
      const known = this.verdicts.get(line.instance);
      if (known && known.client === client.text) {
        return { ok: true, decision: { action: known.verdict.action, reply: known.verdict.reply, result: 'reused', how: 'reused' } };
      }
    }
    const data = line.kind === 'decision' ? messageDataOf(line) : this.messageData.get(line.instance);
    if (!data || (line.kind === 'reuse' && data.clientAddress !== line.clientAddress)) return { ok: false, reason: 'message_not_in_input' };
    if (data.result === 'skipped') return { ok: false, reason: 'exempt_when_logged' };
    return this.judged(data, client, line);
  }

  private judged(data: MessageData, client: ClientIp, line: DecisionRecord | ReuseRecord): ReplayOutcome {
    // decision-record.ts admits only known results, and `skipped` never reaches here.
    const iprev = loggedIprev(data);
    if (!iprev) throw new Error(`replay: unexpected result ${JSON.stringify(data.result)}`);
    let helo: HeloStatus = data.helo ?? 'unchecked';
    const heloUsed = heloLookupUsed(this.policy);
    // A shed line (EHEAPFULL / EBUSY) was judged without DNS; so would the new daemon's be.
    const shed = data.ptrCode === 'EHEAPFULL' || data.ptrCode === 'EBUSY';
    if (heloUsed && helo === 'unchecked' && !shed) return { ok: false, reason: 'helo_not_looked_up' };
    if (!heloUsed && HELO_FROM_LOOKUP.includes(helo)) helo = 'unchecked';
    const request = {
      client,
      clientAddress: data.clientAddress,
      heloName: data.heloName,
      instance: line.instance,
      queueId: '',
      protocolState: '',
      saslUsername: line.authenticated ? 'yes' : '',
      recipient: line.recipient ?? '',
    };
    const decided = decideClient(request, iprev, helo, this.config, this.policy);
    const reply = this.throttled(decided.verdict, client, line) ?? decided.reply;
    const verdict = reply === decided.reply ? decided.verdict : { ...decided.verdict, reply };
    if (line.instance !== '') this.verdicts.set(line.instance, { client: client.text, verdict });
    return { ok: true, decision: { action: verdict.action, reply, result: decided.resultLabel, how: 'judged' } };
  }

  /**
   * A throttled class spends its network's budget as the daemon would, in log order and at the
   * logged times (GCRA, src/judge/throttle.ts), so "what would mismatch_action = throttle at
   * 20/hour have done last week" is exact: the spent-budget reply, or undefined while it lasts.
   */
  private throttled(verdict: Verdict, client: ClientIp, line: DecisionRecord | ReuseRecord): string | undefined {
    if (verdict.action !== 'throttle' || verdict.limitedReply === undefined) return undefined;
    const key = throttleKey(client, { ipv4: this.config.throttlePrefixIpv4, ipv6: this.config.throttlePrefixIpv6 });
    const step = gcraTake(this.throttleParams, this.budgets.get(key), line.time);
    this.budgets.set(key, step.tat);
    return step.allowed ? undefined : verdict.limitedReply;
  }
}

/**
 * How a request was answered, as a from → to matrix compares them: a throttled class that passed
 * and one whose network's budget was spent are different answers of the same action.
 */
export function answerLabel(action: LoggedAction, reply: string): string {
  if (action === 'throttle') return wasThrottled(action, reply) ? 'throttled 450' : 'throttle DUNNO';
  return actionLabel(action);
}

/** An action as administrators read it in a from → to matrix. */
export function actionLabel(action: LoggedAction): string {
  switch (action) {
    case 'dunno':
      return 'DUNNO';
    case 'warn':
      return 'WARN';
    case 'throttle':
      return 'throttle';
    case 'defer':
      return '450';
    case 'reject':
      return '550';
  }
}
