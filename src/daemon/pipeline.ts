/**
 * The request pipeline, one request at a time:
 *   parse → exemptions → per-message memory → cached judgement → admission → lookups → verdict
 *   → remember, count, log, reply.
 * Each step is a function of its own below; the state they read (configuration, policy, DNS
 * cache, metrics) is what the lifecycle in daemon.ts swaps on reload, read once per request so
 * a reload never splits one request between two configurations.
 */
import { performance } from 'node:perf_hooks';
import type { Admission } from './admission.js';
import type { LookupCache } from '../dns/cache.js';
import type { Config } from '../config/config.js';
import { queryDeadlineMs } from '../dns/resolver.js';
import { heloLookupUsed, heloOfName, heloWithoutLookup } from '../judge/helo.js';
import { knownIprev } from '../dns/iprev.js';
import { lookUpAndJudge, type LookupPlan } from './cold-path.js';
import { EXEMPTED, judge, shedJudgement, type Judgement } from '../judge/judgement.js';
import { memoOf, reusedMemo } from '../judge/judgement-memo.js';
import type { KnownClient, KnownClients } from './known-clients.js';
import { logDecision } from '../log/decision-line.js';
import type { Logger } from '../log/logger.js';
import type { MessageMemory, MessageVerdict } from './message-memory.js';
import type { Metrics } from './metrics.js';
import { createNatWatch } from './nat-watch.js';
import { findExemption, type HeloStatus, type PolicySettings, type Verdict } from '../judge/policy.js';
import type { PolicyAttributes } from '../protocol/codec.js';
import { keptWhileWaiting, parsePolicyRequest, type PolicyRequest } from '../protocol/request.js';
import type { HandlerResult, RequestContext } from './server.js';
import type { ThrottleDecision } from './throttle-store.js';
import { throttledJudgement, type Throttling } from './throttling.js';

/** What a reload swaps; the pipeline reads it once per request. */
export interface PipelineState {
  config: Config;
  policy: PolicySettings;
  cache: LookupCache;
  metrics: Metrics;
}

export interface PipelineParts {
  readonly state: PipelineState;
  readonly clients: KnownClients;
  readonly messages: MessageMemory;
  readonly admission: Admission;
  readonly logger: Logger;
  /** The throttle action's budgets (kept across reloads); asked only for a throttled class. */
  readonly throttling: Throttling;
}

type Connection = RequestContext<MessageVerdict>;

export function createPipeline(parts: PipelineParts): (attributes: PolicyAttributes, connection: Connection) => HandlerResult | Promise<HandlerResult> {
  const { state, clients, messages, admission } = parts;
  const noteNetworkSkip = createNatWatch(parts.logger);
  const mayFanOut = (queries: number) => admission.fanOutRefusal(queries);
  const lateHere = () => late(admission);

  /** Remember the verdict for the message's other recipients, count it, log it, reply. */
  const finish = (request: PolicyRequest, config: Config, connection: Connection, judgement: Judgement, cached: boolean, started: number): HandlerResult => {
    messages.remember(request, connection, judgement.verdict, config);
    state.metrics.decision(config.check, judgement.resultLabel, judgement.limited && judgement.reply === judgement.limited.reply ? 'throttled' : judgement.action);
    logDecision(connection.log, request, judgement, cached, performance.now() - started);
    return { reply: judgement.reply };
  };
  /** A throttled class first spends one of its network's budget (once per message: later recipients reuse it). */
  const answer = (request: PolicyRequest<KnownClient>, config: Config, connection: Connection, judgement: Judgement, cached: boolean, started: number): HandlerResult | Promise<HandlerResult> => {
    if (judgement.limited === undefined) return finish(request, config, connection, judgement, cached, started);
    const key = parts.throttling.keyOf(request.client);
    const step = parts.throttling.take(key);
    const settle = (decision: ThrottleDecision | undefined) => finish(request, config, connection, throttledJudgement(judgement, decision, key), cached, started);
    return step instanceof Promise ? step.then(settle) : settle(step);
  };

  return (attributes, connection) => {
    // From when the request was read: a request that waited behind others is not given more time.
    const started = connection.arrivedAt ?? performance.now();
    const parsed = parsePolicyRequest<KnownClient>(attributes, clients.parse);
    if (!parsed.ok) return { trouble: parsed.problem };
    const request = parsed.request;
    const { config, policy, cache } = state;

    const exemption = findExemption(request, config, clients.inSkipNetworks);
    noteNetworkSkip(exemption === 'skip_network');
    if (exemption) {
      logDecision(connection.log, request, EXEMPTED[exemption], false, performance.now() - started);
      state.metrics.decision(config.check, 'skipped', 'dunno');
      return { reply: 'DUNNO' };
    }

    const remembered = messages.recall(request, connection, config);
    if (remembered) {
      logReused(connection, request, remembered);
      return { reply: remembered.reply };
    }

    // Fast path: every answer already cached, nothing to wait for (and no promise either).
    const judgement = judgeFromCache(request, config, policy, cache);
    if (judgement) return answer(request, config, connection, judgement, true, started);

    const deadlineAt = started + queryDeadlineMs({ timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries });
    const refusal = performance.now() >= deadlineAt ? late(admission) : admission.refusal(connection.waiting);
    if (refusal) return answer(request, config, connection, shedJudgement(request, config, policy, refusal), false, started);
    const waiting = keptWhileWaiting(attributes, request);
    return lookUpAndAnswer(admission, waiting, config, policy, { cache, deadlineAt, mayFanOut, late: lateHere }, connection, (judgement, cached) =>
      answer(waiting, config, connection, judgement, cached, started),
    );
  };

}

/**
 * One message is judged and logged once (SPEC "Protocol"); later recipients reuse it, each with
 * a short line of its own, so `report` counts recipients and `replay` sees every request (its
 * recipient can be exempt under another pass_recipients). The header went with the first
 * recipient's reply; the others get the plain verdict.
 */
function logReused(connection: Connection, request: PolicyRequest, remembered: Verdict): void {
  connection.log.info(
    {
      client_address: request.clientAddress,
      instance: request.instance,
      recipient: request.recipient,
      authenticated: request.saslUsername !== '',
      action: remembered.action,
      reply: remembered.reply,
    },
    'decision reused for another recipient',
  );
}

/**
 * The client's judgement from its memo or from answers already cached, or undefined when DNS
 * must be asked. A judgement made from cached answers becomes the client's memo.
 */
function judgeFromCache(request: PolicyRequest<KnownClient>, config: Config, policy: PolicySettings, cache: LookupCache): Judgement | undefined {
  const client = request.client;
  const memo = reusedMemo(client.memo, request.heloName, config, cache);
  if (memo) return memo;
  const known = cache.known();
  const result = knownIprev(client, known, config.maxPtrNames);
  if (!result) return undefined;
  const early = heloWithoutLookup(request.heloName, client, result.confirmedNames);
  let helo: HeloStatus | undefined;
  if (typeof early === 'string') helo = early;
  else {
    // The HELO name's own answer is read only when helo_mismatch_action uses it.
    const lookupUsed = heloLookupUsed(policy);
    const outcome = lookupUsed ? known.addresses(early.lookup, client.family) : undefined;
    helo = heloOfName(early.lookup, result.confirmedNames, lookupUsed, outcome, client);
  }
  if (!helo) return undefined;
  const answers = known.commit();
  const judgement = judge(request, result, helo, config, policy);
  client.memo = memoOf(judgement, request.heloName, config, cache, known.expiresAt(), answers);
  return judgement;
}

/**
 * A request whose deadline (dns_timeout × dns_tries + margin from its arrival) passed before
 * its lookups could start: it waited behind its own connection's or a burst's, and is answered
 * as its lookups would have ended, per temperror_action (EBUSY: the daemon's pressure, not DNS).
 */
function late(admission: Admission): 'EBUSY' {
  admission.countLate();
  return 'EBUSY';
}

/** A new client: a place among the waiting requests, its lookups (src/daemon/cold-path.ts), then `reply`. */
function lookUpAndAnswer(
  admission: Admission,
  request: PolicyRequest<KnownClient>,
  config: Config,
  policy: PolicySettings,
  plan: LookupPlan,
  connection: Connection,
  reply: (judgement: Judgement, cached: boolean) => HandlerResult | Promise<HandlerResult>,
): Promise<HandlerResult> {
  admission.hold();
  return new Promise<HandlerResult>((resolve, reject) => {
    // The place is given back exactly once, whichever way the request ends (a throw while the
    // lookup is being set up included), and the promise settles once.
    let held = true;
    const release = (): boolean => {
      if (held) admission.release();
      const was = held;
      held = false;
      return was;
    };
    const judged = (judgement: Judgement, cached: boolean): void => {
      if (!release()) return;
      try {
        resolve(reply(judgement, cached));
      } catch (error) {
        reject(error);
      }
    };
    const failed = (error: unknown): void => {
      if (release()) reject(error);
    };
    try {
      lookUpAndJudge(request, config, policy, plan, connection, judged, failed);
    } catch (error) {
      failed(error);
    }
  });
}
