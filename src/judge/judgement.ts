/**
 * From a classified client to what the daemon answers: the generic-name signal, pass_names, the
 * verdict (the pure decision core in policy.ts), the Authentication-Results header, and the
 * decision line's outcome fields, serialised once so a client judged again reuses them.
 */
import { authenticationResults } from './authres.js';
import type { Config } from '../config/config.js';
import { genericSignal, type GenericSignal } from './generic.js';
import { heloWithoutLookup } from './helo.js';
import type { IprevResult } from '../dns/iprev.js';
import { reverseName, type ClientIp } from '../util/ip.js';
import { flatCopy } from '../util/text.js';
import { outcomeFields, type OutcomeFields } from '../log/logger.js';
import { decide, effectiveActions, matchesPassNames, type Exemption, type HeloStatus, type PolicySettings, type Verdict } from './policy.js';
import type { PolicyRequest } from '../protocol/request.js';

/**
 * What the daemon concluded about one client: the verdict, the reply, and (as OutcomeFields)
 * the log's outcome fields. Flat, so answering from it reads one object.
 */
export interface Judgement extends OutcomeFields {
  readonly verdict: Verdict;
  /** verdict.action, kept here too (see above). */
  readonly action: Verdict['action'];
  readonly reply: string;
  /** The result as logged and counted: the iprev class, or `generic`. */
  readonly resultLabel: string;
  /** For `throttle`: the reply and outcome fields once the network's budget is spent. */
  readonly limited?: OutcomeFields & { readonly reply: string };
}

/** The outcome of an exempted request, per exemption: the same every time (flat: written per request). */
const exempted = (reason: Exemption): OutcomeFields => ({ json: flatCopy(outcomeFields({ result: 'skipped', reason, action: 'dunno', reply: 'DUNNO' }).json) });
export const EXEMPTED: Record<Exemption, OutcomeFields> = {
  pass_recipient: exempted('pass_recipient'),
  authenticated: exempted('authenticated'),
  skip_network: exempted('skip_network'),
};

/** The decision settings of a configuration, with its action table computed once, not per request. */
export function policyFor(config: Config): PolicySettings {
  const settings = {
    check: config.check,
    mode: config.mode,
    overrides: config.overrides,
    replyHint: config.replyHint,
    genericAction: config.genericAction,
    heloMismatchAction: config.heloMismatchAction,
  };
  return { ...settings, actions: effectiveActions(settings) };
}

/** What decides a judgement and its reply, before any of it is written down for the log. */
export interface Decided {
  readonly verdict: Verdict;
  readonly reply: string;
  readonly resultLabel: string;
  readonly generic: (GenericSignal & { name: string }) | undefined;
  readonly passName: string | undefined;
  readonly header: string | undefined;
}

/**
 * The decision for a classified client: generic name, pass_names, the verdict (policy.ts) and
 * the reply with its Authentication-Results header. The daemon logs it (judge); replay compares
 * it (src/reports/replay.ts): one code path for both.
 */
export function decideClient(request: PolicyRequest, result: IprevResult, helo: HeloStatus, config: Config, policy: PolicySettings): Decided {
  // A generic-looking name only counts when every confirmed name looks generic.
  let generic: (GenericSignal & { name: string }) | undefined;
  if (result.result === 'pass') {
    const signals = result.confirmedNames.map((name) => ({ name, signal: genericSignal(name, request.client, config.genericLevel) }));
    const first = signals[0];
    if (first?.signal && signals.every((item) => item.signal)) generic = { name: first.name, ...first.signal };
  }
  const passName = matchesPassNames(result.confirmedNames, config.passNames);
  const verdict = decide(
    { result: result.result, temperrorStage: result.temperrorStage, generic: generic !== undefined, helo, passName: passName !== undefined },
    request.client,
    policy,
  );
  // RFC 8601 header on the first accepted request of the message (PREPEND goes on like DUNNO).
  const header =
    config.authresHeader && (verdict.action === 'dunno' || verdict.action === 'warn')
      ? authenticationResults(config.authservId, request.client, result)
      : undefined;
  const reply = header === undefined ? verdict.reply : `PREPEND ${header}`;
  return { verdict, reply, resultLabel: generic ? 'generic' : result.result, generic, passName, header };
}

/** Judge a classified client: the decision, and the decision line's outcome fields. */
export function judge(request: PolicyRequest, result: IprevResult, helo: HeloStatus, config: Config, policy: PolicySettings): Judgement {
  const decided = decideClient(request, result, helo, config, policy);
  const { verdict, reply, resultLabel } = decided;
  const { json } = outcomeFields(outcomeParts(result, helo, decided, reply));
  if (verdict.limitedReply === undefined) return { verdict, action: verdict.action, reply, resultLabel, json };
  // A throttled class: both answers are written down once, the pipeline picks one per message.
  const limited = { reply: verdict.limitedReply, json: outcomeFields(outcomeParts(result, helo, decided, verdict.limitedReply)).json };
  return { verdict, action: verdict.action, reply, resultLabel, json, limited };
}

/** The decision line's outcome members for a decided client and one of its replies. */
function outcomeParts(result: IprevResult, helo: HeloStatus, decided: Decided, reply: string): Parameters<typeof outcomeFields>[0] {
  const { verdict, resultLabel, generic, passName, header } = decided;
  return {
    result: resultLabel,
    temperrorStage: result.temperrorStage,
    ptr: result.ptr,
    forward: result.forward,
    action: verdict.action,
    reply,
    // Absent members are undefined, which the serialisation leaves out (one shape, no spreads).
    extra: {
      helo,
      generic: generic ? { name: generic.name, rule: generic.rule, reason: generic.reason, detail: generic.detail } : undefined,
      pass_name: passName || undefined,
      decided_by: verdict.decidedBy,
      authres: header ? header.slice('Authentication-Results: '.length) : undefined,
    },
  };
}

/**
 * A new client turned away while the heap is nearly full (EHEAPFULL) or too many requests
 * wait for DNS (EBUSY): a temperror of the PTR stage with that code (no query was sent), so
 * temperror_action decides and the log says why.
 */
export function shedJudgement(request: PolicyRequest<ClientIp>, config: Config, policy: PolicySettings, code: 'EHEAPFULL' | 'EBUSY'): Judgement {
  const result: IprevResult = {
    result: 'temperror',
    temperrorStage: 'ptr',
    reverseName: reverseName(request.client),
    ptr: { outcome: 'temporary', code, names: [], ignored: [] },
    forward: [],
    confirmedNames: [],
  };
  const helo = heloWithoutLookup(request.heloName, request.client, []);
  return judge(request, result, typeof helo === 'string' ? helo : 'unchecked', config, policy);
}
