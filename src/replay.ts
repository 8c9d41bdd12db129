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
import type { Config } from './config.js';
import type { DecisionRecord, LoggedAction, ReuseRecord } from './decision-record.js';
import { FifoMap } from './fifo-map.js';
import { heloLookupUsed } from './helo.js';
import { parseClientIp, type ClientIp } from './ip.js';
import type { IprevClass, IprevResult } from './iprev.js';
import { decideClient, policyFor } from './judgement.js';
import { LIMITS } from './limits.js';
import { findExemption, type HeloStatus, type PolicySettings, type Verdict } from './policy.js';

export type NotReplayable =
  /** A line of a version before 0.2: no `recipient` / `authenticated` (pass_recipients, skip_authenticated). */
  | 'older_line'
  /** The line's request fields were cut to keep it under 4 KiB. */
  | 'request_fields_cut'
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

/** The iprev result a decision line records (generic is a pass that looked dynamic). */
function loggedIprev(line: DecisionRecord): IprevResult | undefined {
  const result = line.result === 'generic' ? 'pass' : line.result;
  if (!IPREV_CLASSES.includes(result)) return undefined;
  const forward = line.forward ?? [];
  return {
    result: result as IprevClass,
    ...(line.temperrorStage ? { temperrorStage: line.temperrorStage } : {}),
    reverseName: '',
    ptr: {
      outcome: (line.ptr?.outcome ?? 'not_found') as IprevResult['ptr']['outcome'],
      ...(line.ptr?.code !== undefined ? { code: line.ptr.code } : {}),
      names: line.ptr?.names ?? [],
      ignored: [],
    },
    forward,
    confirmedNames: forward.filter((check) => check.matched).map((check) => check.name),
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
  private readonly messageData: FifoMap<DecisionRecord>;

  /** `messageData` may be shared by replayers of the same log (report replays two presets). */
  constructor(
    private readonly config: Config,
    messageData = new FifoMap<DecisionRecord>(LIMITS.instanceCacheSize),
  ) {
    this.policy = policyFor(config);
    this.messageData = messageData;
  }

  replay(line: DecisionRecord | ReuseRecord): ReplayOutcome {
    if (line.recipient === undefined || line.authenticated === undefined) return { ok: false, reason: 'older_line' };
    if (line.kind === 'decision' && line.requestFieldsCut) return { ok: false, reason: 'request_fields_cut' };
    const client = parseClientIp(line.clientAddress);
    if (!client) return { ok: false, reason: 'bad_client_address' };
    if (line.kind === 'decision' && line.instance !== '' && line.result !== 'skipped') this.messageData.set(line.instance, line);

    // The pipeline's order (src/pipeline.ts): exemptions, then the message's verdict, then judging.
    const request = { client, recipient: line.recipient, saslUsername: line.authenticated ? 'yes' : '' };
    if (findExemption(request, this.config)) return { ok: true, decision: { action: 'dunno', reply: 'DUNNO', result: 'skipped', how: 'exempt' } };
    if (line.instance !== '') {
      const known = this.verdicts.get(line.instance);
      if (known && known.client === client.text) {
        return { ok: true, decision: { action: known.verdict.action, reply: known.verdict.reply, result: 'reused', how: 'reused' } };
      }
    }
    const data = line.kind === 'decision' ? line : this.messageData.get(line.instance);
    if (!data || (data.kind === 'decision' && data.clientAddress !== line.clientAddress)) return { ok: false, reason: 'message_not_in_input' };
    if (data.result === 'skipped') return { ok: false, reason: 'exempt_when_logged' };
    return this.judged(data, client, line);
  }

  private judged(data: DecisionRecord, client: ClientIp, line: DecisionRecord | ReuseRecord): ReplayOutcome {
    // decision-record.ts admits only known results, and `skipped` never reaches here.
    const iprev = loggedIprev(data);
    if (!iprev) throw new Error(`replay: unexpected result ${JSON.stringify(data.result)}`);
    let helo: HeloStatus = data.helo ?? 'unchecked';
    const heloUsed = heloLookupUsed(this.policy);
    // A shed line (EHEAPFULL / EBUSY) was judged without DNS; so would the new daemon's be.
    const shed = data.ptr?.code === 'EHEAPFULL' || data.ptr?.code === 'EBUSY';
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
    if (line.instance !== '') this.verdicts.set(line.instance, { client: client.text, verdict: decided.verdict });
    return { ok: true, decision: { action: decided.verdict.action, reply: decided.reply, result: decided.resultLabel, how: 'judged' } };
  }
}

/** An action as administrators read it in a from → to matrix. */
export function actionLabel(action: LoggedAction): string {
  switch (action) {
    case 'dunno':
      return 'DUNNO';
    case 'warn':
      return 'WARN';
    case 'defer':
      return '450';
    case 'reject':
      return '550';
  }
}
