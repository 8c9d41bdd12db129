/**
 * The pure decision core: an iprev result plus the policy settings → a verdict (action and
 * the exact reply line). Implements the SPEC "Decision" table; touches no I/O.
 */
import type { ClientIp, Network } from '../util/ip.js';
import { inNetworks } from '../util/ip.js';

export {
  ACTIONS,
  CHECKS,
  MODES,
  effectiveActions,
  presetActions,
  type Action,
  type ActionTable,
  type Check,
  type FailureClass,
  type Mode,
} from '../config/presets.js';
import { effectiveActions, type Action, type ActionTable, type Check, type Mode } from '../config/presets.js';
import type { IprevClass } from '../dns/iprev.js';

export interface PolicySettings {
  readonly check: Check;
  readonly mode: Mode;
  /** Explicit `*_action` keys; each overrides its preset. */
  readonly overrides: Partial<ActionTable>;
  readonly replyHint: string;
  /** For a forward-confirmed but generic-looking name (default dunno). */
  readonly genericAction?: Action;
  /** For a HELO name that is not the client's confirmed name (default dunno). */
  readonly heloMismatchAction?: Action;
  /** effectiveActions() of these settings, when the caller computed it once per configuration. */
  readonly actions?: ActionTable;
}

/**
 * How the HELO/EHLO name relates to the client: a forward-confirmed PTR name, a name whose
 * A/AAAA records include the client, an address literal of the client (RFC 5321 §4.1.3), or not.
 */
/**
 * `unchecked`: the HELO name would need a forward lookup, and none was made because
 * helo_mismatch_action is `dunno` (a lookup whose answer cannot change the action is not made).
 */
export type HeloStatus = 'confirmed' | 'resolves' | 'literal' | 'mismatch' | 'literal_mismatch' | 'invalid' | 'missing' | 'temperror' | 'unchecked';
/** The statuses helo_mismatch_action applies to; a missing name or DNS trouble never counts. */
export const HELO_MISMATCHES: readonly HeloStatus[] = ['mismatch', 'literal_mismatch', 'invalid'];

/** throttle sits between warn and defer: it passes while the network has budget left. */
const SEVERITY: Record<Action, number> = { dunno: 0, warn: 1, throttle: 2, defer: 3, reject: 4 };

export interface Verdict {
  readonly action: Action;
  /** The reply's action text, e.g. `450 4.7.25 cannot find your hostname, [192.0.2.1]`. */
  readonly reply: string;
  /** What decided the action: the iprev result, the generic-name signal, the HELO check, or pass_names. */
  readonly decidedBy: 'iprev' | 'generic' | 'helo' | 'pass_name';
  /** For `throttle`: the reply once the network's budget is spent (`reply` is the one while it lasts). */
  readonly limitedReply?: string;
}

/** What a spent throttle budget adds to the failure text (issue 27; Gmail's 421 4.7.23 says the same). */
export const THROTTLED_TEXT = 'unverified host rate limited, try again later';

export interface ClassifiedClient {
  readonly result: IprevClass;
  readonly temperrorStage?: 'ptr' | 'forward';
  /** A forward-confirmed name matched pass_names: nothing else is acted on. */
  readonly passName?: boolean;
  /** Every confirmed name looks generic (only meaningful with result pass). */
  readonly generic?: boolean;
  readonly helo?: HeloStatus;
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
 * Build the verdict for a result (and the generic-name and HELO signals). Texts follow Postfix's own built-ins (POSTFIX-FACTS 10, 11)
 * with RFC 7372's X.7.25 for both checks; Postfix adds the "<rcpt>: Recipient address
 * rejected: " prefix itself (POSTFIX-FACTS 8). Code, enhanced code and text always go together
 * (POSTFIX-FACTS 7). Only the validated, canonical client IP reaches the text.
 */
export function decide(client: ClassifiedClient, ip: ClientIp, settings: PolicySettings): Verdict {
  if (client.passName) return { action: 'dunno', reply: 'DUNNO', decidedBy: 'pass_name' };
  const candidates: Array<{ action: Action; decidedBy: Verdict['decidedBy']; text: string; code: '25' | '1'; label: string }> = [
    {
      action: actionFor(client, settings.actions ?? effectiveActions(settings)),
      decidedBy: 'iprev',
      text: failureText(client, ip, settings.check),
      code: '25',
      label: client.result,
    },
  ];
  if (client.result === 'pass' && client.generic) {
    candidates.push({
      action: settings.genericAction ?? 'dunno',
      decidedBy: 'generic',
      text: `your reverse hostname looks generic or dynamic, [${ip.text}]`,
      code: '1',
      label: 'generic',
    });
  }
  if (client.helo !== undefined && HELO_MISMATCHES.includes(client.helo)) {
    candidates.push({
      action: settings.heloMismatchAction ?? 'dunno',
      decidedBy: 'helo',
      text: `HELO name does not match your hostname, [${ip.text}]`,
      code: '1',
      label: 'helo_mismatch',
    });
  }
  // The most severe action wins; on a tie the iprev result speaks first.
  const chosen = candidates.reduce((best, candidate) => (SEVERITY[candidate.action] > SEVERITY[best.action] ? candidate : best));
  const hinted = settings.replyHint === '' ? chosen.text : `${chosen.text}; ${settings.replyHint}`;
  switch (chosen.action) {
    case 'dunno':
      return { action: 'dunno', reply: 'DUNNO', decidedBy: chosen.decidedBy };
    case 'warn':
      // WARN logs in Postfix's log and the restriction list goes on (POSTFIX-FACTS 9).
      return { action: 'warn', reply: `WARN fcrdns-policyd ${chosen.label}: ${chosen.text}`, decidedBy: chosen.decidedBy };
    case 'throttle': {
      const limited = `${chosen.text}; ${THROTTLED_TEXT}`;
      const limitedHinted = settings.replyHint === '' ? limited : `${limited}; ${settings.replyHint}`;
      return { action: 'throttle', reply: 'DUNNO', decidedBy: chosen.decidedBy, limitedReply: `450 4.7.${chosen.code} ${limitedHinted}` };
    }
    case 'defer':
      return { action: 'defer', reply: `450 4.7.${chosen.code} ${hinted}`, decidedBy: chosen.decidedBy };
    case 'reject':
      return { action: 'reject', reply: `550 5.7.${chosen.code} ${hinted}`, decidedBy: chosen.decidedBy };
  }
}

/**
 * pass_names (verified-name allowlist): `mx.partner.org` matches that name, `.example.net` any
 * name below example.net, on label boundaries (`evilexample.net` never matches `.example.net`).
 * Only forward-confirmed names are ever given to it.
 */
export function matchesPassNames(confirmedNames: readonly string[], passNames: readonly string[]): string | undefined {
  for (const name of confirmedNames) {
    for (const pattern of passNames) {
      if (pattern.startsWith('.') ? name.endsWith(pattern) : name === pattern) return name;
    }
  }
  return undefined;
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

/** Whether the recipient's local part (before the last "@"), in any case, is one of `localParts`. */
function isPassRecipient(recipient: string, localParts: readonly string[]): boolean {
  // indexOf, not lastIndexOf: V8 runs String#lastIndexOf in its slow runtime path.
  let length = recipient.length;
  for (let at = recipient.indexOf('@'); at !== -1; at = recipient.indexOf('@', at + 1)) length = at;
  // Most recipients match no local part by length alone: no copy, no lower-casing (and a plain
  // loop: a callback would be a closure allocated for every request).
  for (const part of localParts) {
    if (part.length === length && recipient.slice(0, length).toLowerCase() === part) return true;
  }
  return false;
}

/**
 * Requests never checked: mail to postmaster/abuse so a blocked sender can still reach the
 * admin (RFC 5321 §4.5.1), SASL-authenticated clients, and clients in skip_networks (a client
 * behind NAT or a proxy cannot be judged by its address).
 */
export function findExemption<Client extends ClientIp>(
  request: { client: Client; recipient: string; saslUsername: string },
  settings: ExemptionSettings,
  /** Membership test for skip_networks (the daemon remembers it per client). */
  inSkipNetworks: (client: Client, networks: readonly Network[]) => boolean = inNetworks,
): Exemption | undefined {
  if (settings.passRecipients.length > 0 && request.recipient !== '' && isPassRecipient(request.recipient, settings.passRecipients)) {
    return 'pass_recipient';
  }
  if (settings.skipAuthenticated && request.saslUsername !== '') return 'authenticated';
  if (inSkipNetworks(request.client, settings.skipNetworks)) return 'skip_network';
  return undefined;
}
