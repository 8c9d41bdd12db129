/**
 * The vocabulary of the policy keys and the SPEC "Decision" presets: which action each failure
 * class gets for a `check` and `mode`, before explicit `*_action` keys override it. Config owns
 * them (the key table validates against them); the judge (src/judge/policy.ts) applies them.
 */

export type Check = 'fcrdns' | 'reverse';
export type Mode = 'monitor' | 'soft' | 'strict';
/**
 * `throttle` (issue 27): DUNNO while the client's network has budget left, then a 450 that says
 * an unverified host is rate limited (Gmail's 421 4.7.23 for the same senders).
 */
export type Action = 'dunno' | 'warn' | 'throttle' | 'defer' | 'reject';
/** The iprev classes that carry a configurable action (pass is always DUNNO; src/dns/iprev.ts). */
export type FailureClass = 'no_ptr' | 'no_forward' | 'mismatch' | 'temperror';
export type ActionTable = Record<FailureClass, Action>;

export const CHECKS: readonly Check[] = ['fcrdns', 'reverse'];
export const MODES: readonly Mode[] = ['monitor', 'soft', 'strict'];
export const ACTIONS: readonly Action[] = ['dunno', 'warn', 'throttle', 'defer', 'reject'];

/** A throttle rate: `rate` events per `periodMs` (`20/hour`). */
export interface ThrottleRate {
  readonly rate: number;
  readonly periodMs: number;
  /** As written in the config (`20/hour`), for the dump and the log. */
  readonly text: string;
}

/** How eagerly a forward-confirmed name that looks dynamic counts as generic (src/judge/generic.ts). */
export type GenericLevel = 'conservative' | 'aggressive';
export const GENERIC_LEVELS: readonly GenericLevel[] = ['conservative', 'aggressive'];

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
export function effectiveActions(settings: { readonly check: Check; readonly mode: Mode; readonly overrides: Partial<ActionTable> }): ActionTable {
  return { ...presetActions(settings.check, settings.mode), ...settings.overrides };
}
