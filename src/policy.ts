/**
 * The pure decision core: an iprev result plus the policy settings → a verdict (action and
 * the exact reply line). Implements the SPEC "Decision" table; touches no I/O.
 */
import type { ClientIp, Network } from './ip.js';
import { inNetworks } from './ip.js';
import type { IprevClass } from './iprev.js';

export type Check = 'fcrdns' | 'reverse';
export type Mode = 'monitor' | 'soft' | 'strict';
export type Action = 'dunno' | 'warn' | 'defer' | 'reject';
/** The classes that carry a configurable action (pass is always DUNNO). */
export type FailureClass = Exclude<IprevClass, 'pass'>;
export type ActionTable = Record<FailureClass, Action>;

export const CHECKS: readonly Check[] = ['fcrdns', 'reverse'];
export const MODES: readonly Mode[] = ['monitor', 'soft', 'strict'];
export const ACTIONS: readonly Action[] = ['dunno', 'warn', 'defer', 'reject'];

export interface PolicySettings {
  readonly check: Check;
  readonly mode: Mode;
  /** Explicit `*_action` keys; each overrides its preset. */
  readonly overrides: Partial<ActionTable>;
  readonly replyHint: string;
}

/** What a failure costs in each mode: strict rejects, soft defers, monitor only warns. */
const FAILURE_ACTION: Record<Mode, Action> = { strict: 'reject', soft: 'defer', monitor: 'warn' };
/** Temporary trouble never rejects: Postfix answers 450 for it too (POSTFIX-FACTS 12). */
const TEMPORARY_ACTION: Record<Mode, Action> = { strict: 'defer', soft: 'defer', monitor: 'warn' };

/** The preset half of the SPEC table for one check and mode. */
export function presetActions(check: Check, mode: Mode): ActionTable {
  const failure = FAILURE_ACTION[mode];
  return {
    no_ptr: failure,
    // The reverse check only asks that a PTR exists; forward failures are logged, not acted on.
    no_forward: check === 'fcrdns' ? failure : 'dunno',
    mismatch: check === 'fcrdns' ? failure : 'dunno',
    temperror: TEMPORARY_ACTION[mode],
  };
}

/** Presets with the explicit overrides applied. */
export function effectiveActions(settings: Pick<PolicySettings, 'check' | 'mode' | 'overrides'>): ActionTable {
  return { ...presetActions(settings.check, settings.mode), ...settings.overrides };
}

export interface Verdict {
  readonly action: Action;
  /** The reply's action text, e.g. `450 4.7.25 cannot find your hostname, [192.0.2.1]`. */
  readonly reply: string;
}

export interface ClassifiedClient {
  readonly result: IprevClass;
  readonly temperrorStage?: 'ptr' | 'forward';
}

/**
 * The action for one result. A temperror in the forward lookups only matters if a forward
 * failure would have been acted on: under check=reverse with its presets it is DUNNO, as the
 * SPEC table says, while an admin who sets mismatch_action under check=reverse gets
 * temperror_action for the forward trouble that hid a possible mismatch.
 */
export function actionFor(client: ClassifiedClient, actions: ActionTable): Action {
  switch (client.result) {
    case 'pass':
      return 'dunno';
    case 'no_ptr':
    case 'no_forward':
    case 'mismatch':
      return actions[client.result];
    case 'temperror':
      if (client.temperrorStage === 'forward' && actions.no_forward === 'dunno' && actions.mismatch === 'dunno') {
        return 'dunno';
      }
      return actions.temperror;
  }
}

/**
 * Build the verdict for a result. Texts follow Postfix's own built-ins (POSTFIX-FACTS 10, 11)
 * with RFC 7372's X.7.25 for both checks; Postfix adds the "<rcpt>: Recipient address
 * rejected: " prefix itself (POSTFIX-FACTS 8). Code, enhanced code and text always go together
 * (POSTFIX-FACTS 7). Only the validated, canonical client IP reaches the text.
 */
export function decide(client: ClassifiedClient, ip: ClientIp, settings: PolicySettings): Verdict {
  const action = actionFor(client, effectiveActions(settings));
  const text = failureText(client, ip, settings.check);
  const hinted = settings.replyHint === '' ? text : `${text}; ${settings.replyHint}`;
  switch (action) {
    case 'dunno':
      return { action, reply: 'DUNNO' };
    case 'warn':
      // WARN logs in Postfix's log and the restriction list goes on (POSTFIX-FACTS 9).
      return { action, reply: `WARN fcrdns-policyd ${client.result}: ${text}` };
    case 'defer':
      return { action, reply: `450 4.7.25 ${hinted}` };
    case 'reject':
      return { action, reply: `550 5.7.25 ${hinted}` };
  }
}

/** "reverse hostname" when the failure is that no PTR name could be found under check=reverse. */
function failureText(client: ClassifiedClient, ip: ClientIp, check: Check): string {
  const reverseOnly =
    check === 'reverse' &&
    (client.result === 'no_ptr' || (client.result === 'temperror' && client.temperrorStage === 'ptr'));
  return `cannot find your ${reverseOnly ? 'reverse hostname' : 'hostname'}, [${ip.text}]`;
}

export interface ExemptionSettings {
  readonly skipNetworks: readonly Network[];
  readonly passRecipients: readonly string[];
  readonly skipAuthenticated: boolean;
}

export type Exemption = 'pass_recipient' | 'authenticated' | 'skip_network';

/**
 * Requests never checked: mail to postmaster/abuse so a blocked sender can still reach the
 * admin (RFC 5321 §4.5.1), SASL-authenticated clients, and clients in skip_networks (a client
 * behind NAT or a proxy cannot be judged by its address).
 */
export function findExemption(
  request: { client: ClientIp; recipient: string; saslUsername: string },
  settings: ExemptionSettings,
): Exemption | undefined {
  if (settings.passRecipients.length > 0 && request.recipient !== '') {
    const at = request.recipient.lastIndexOf('@');
    const localPart = (at === -1 ? request.recipient : request.recipient.slice(0, at)).toLowerCase();
    if (settings.passRecipients.includes(localPart)) return 'pass_recipient';
  }
  if (settings.skipAuthenticated && request.saslUsername !== '') return 'authenticated';
  if (inNetworks(request.client, settings.skipNetworks)) return 'skip_network';
  return undefined;
}
