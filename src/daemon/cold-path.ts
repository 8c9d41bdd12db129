/**
 * The cold path: a request for a client whose answers are not all cached, from the moment it may
 * ask DNS to its judgement. The PTR lookup, its names' forward lookups (the client's family only,
 * POSTFIX-FACTS 10) and, when helo_mismatch_action can use it, the HELO name's lookup beside
 * them, all inside one overall deadline that runs from the request's arrival.
 *
 * Why it is written with callbacks and one object per request instead of async functions: a new
 * client's lookups went through about twenty promises, twenty closures and three timers (an
 * async function per step, Promise.race against the deadline, a promise and a timer per query),
 * all held while it waited and copied by every young-generation collection meanwhile; the floor
 * server (bench/floor-server.ts) makes the same queries with one callback each. Here a request
 * is one ColdLookup that listens for all its lookups (the cache tells it which by slot), one
 * timer for its deadline, and one promise for its answer. `npm run bench -- --only cold-local`
 * (CPU per new client against the floor server) and `npm run bench:handler -- --cold` guard it;
 * BENCHMARKS.md "Session 8" has the figures.
 */
import { performance } from 'node:perf_hooks';
import type { LookupCache, LookupListener } from '../dns/cache.js';
import type { Config } from '../config/config.js';
import { forwardCheck, fromForward, fromPtr, refusedForward, type FanOutCheck, type IprevResult } from '../dns/iprev.js';
import { TIMED_OUT, type AddressOutcome, type PtrOutcome } from '../dns/outcome.js';
import { paced, pacedBegin, type Startable } from '../dns/pacing.js';
import { heloLookupUsed, heloOfName, heloWithoutLookup } from '../judge/helo.js';
import { judge, shedJudgement, type Judgement } from '../judge/judgement.js';
import type { HeloStatus, PolicySettings } from '../judge/policy.js';
import type { PolicyRequest } from '../protocol/request.js';
import { reverseName } from '../util/ip.js';
import type { KnownClient } from './known-clients.js';

/** Where a waiting request's lookups go, until when, and whom to ask before fanning out. */
export interface LookupPlan {
  readonly cache: LookupCache;
  /** performance.now() at which the request is answered whatever DNS has said. */
  readonly deadlineAt: number;
  readonly mayFanOut: FanOutCheck;
  /** Counts a request that waited for its turn past its deadline; the code it is answered with. */
  readonly late: () => 'EBUSY';
}

/** What the cold path hands back: the judgement, and whether every answer came from the cache. */
export type Judged = (judgement: Judgement, cached: boolean) => void;

/** What a finished lookup's listeners become. */
const IGNORED = (): void => undefined;

/** Listener slots besides the forward lookups' (0, 1, …: the PTR names in answer order). */
const PTR_SLOT = -1;
const HELO_SLOT = -2;

/**
 * Look up a new client and judge it, then `judged(…)`; a bug on the way is `failed(error)`.
 * Started in its turn (src/dns/pacing.ts, `key` the connection), so one connection's burst
 * cannot keep another's request from starting.
 */
export function lookUpAndJudge(
  request: PolicyRequest<KnownClient>,
  config: Config,
  policy: PolicySettings,
  plan: LookupPlan,
  key: object,
  judged: Judged,
  failed: (error: unknown) => void,
): void {
  pacedBegin(new ColdLookup(request, config, policy, plan, judged, failed), key);
}

class ColdLookup implements LookupListener, Startable {
  private readonly arpa: string;
  /** The client (its record outlives the request anyway, and holds nothing of the read). */
  private readonly client: KnownClient;
  /**
   * The request, until finish() lets go of it: its strings may be slices of the text it was
   * read in (src/protocol/request.ts keptWhileWaiting), and a finished lookup lives on for as
   * long as one of its queries is still out.
   */
  private request: PolicyRequest<KnownClient> | undefined;
  private ptrDone = false;
  private names: readonly string[] = [];
  private ptrSummary: IprevResult['ptr'] | undefined;
  private forward: Array<AddressOutcome | undefined> = [];
  private forwardLeft = 0;
  private result: IprevResult | undefined;
  /** The HELO name's status when it needs no lookup, its name when it does. */
  private helo: HeloStatus | undefined;
  private heloName = '';
  private heloAsked = false;
  private heloOutcome: AddressOutcome | undefined;
  private allCached = true;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  /** Who hears the judgement, until it has (finish() lets go of them: see there). */
  private judged: Judged;
  private failed: (error: unknown) => void;

  constructor(
    request: PolicyRequest<KnownClient>,
    private readonly config: Config,
    private readonly policy: PolicySettings,
    private readonly plan: LookupPlan,
    judged: Judged,
    failed: (error: unknown) => void,
  ) {
    this.request = request;
    this.client = request.client;
    this.arpa = reverseName(request.client);
    this.judged = judged;
    this.failed = failed;
  }

  start(): void {
    try {
      const left = this.plan.deadlineAt - performance.now();
      if (left <= 0) {
        this.allCached = false;
        this.end(shedJudgement(this.unfinished(), this.config, this.policy, this.plan.late()));
        return;
      }
      // Whole milliseconds: node keeps one timer list per distinct duration, so a fractional one
      // would make a list (and a priority-queue entry) per waiting request.
      this.timer = setTimeout(expire, Math.ceil(left), this);
      this.askHelo();
      // Asked last: an answer the cache holds, or an error node:dns throws at once, may finish
      // the whole request inside this call.
      const ptr = this.plan.cache.askPtr(this.arpa, this, PTR_SLOT);
      if (ptr !== undefined) this.onPtr(ptr);
    } catch (error) {
      this.fail(error);
    }
  }

  /** A lookup the cache could not answer at once has ended (LookupListener). */
  settled(outcome: PtrOutcome | AddressOutcome, slot: number): void {
    if (this.finished) return;
    this.allCached = false;
    try {
      if (slot === PTR_SLOT) this.onPtr(outcome);
      else if (slot === HELO_SLOT) this.onHelo(outcome);
      else this.onForward(outcome, slot);
    } catch (error) {
      this.fail(error);
    }
  }

  /** The deadline passed: whatever has not been answered is a temporary failure (ETIMEOUT). */
  timeOut(): void {
    if (this.finished) return;
    this.allCached = false;
    try {
      if (this.heloAsked) this.heloOutcome ??= TIMED_OUT;
      if (!this.ptrDone) this.onPtr(TIMED_OUT);
      else if (this.result === undefined) for (let slot = 0; slot < this.forward.length; slot++) this.onForward(TIMED_OUT, slot);
      else this.onHelo(TIMED_OUT);
    } catch (error) {
      this.fail(error);
    }
  }

  /** The HELO name's status, or its lookup started beside the PTR's (as Postfix's own would be). */
  private askHelo(): void {
    const early = heloWithoutLookup(this.unfinished().heloName, this.client, []);
    if (typeof early === 'string') {
      this.helo = early;
      return;
    }
    this.heloName = early.lookup;
    if (!heloLookupUsed(this.policy)) return;
    this.heloAsked = true;
    // An outcome delivered inside this call (node:dns throwing at once) is in heloOutcome already.
    const cached = this.plan.cache.askAddresses(early.lookup, this.client.family, this, HELO_SLOT);
    if (cached !== undefined) this.heloOutcome = cached;
  }

  private onPtr(outcome: PtrOutcome): void {
    if (this.ptrDone) return;
    this.ptrDone = true;
    const step = fromPtr(this.arpa, outcome, this.config.maxPtrNames);
    if ('done' in step) return this.onResult(step.done);
    const refused = this.plan.mayFanOut(step.names.length);
    if (refused !== undefined) return this.onResult(refusedForward(this.arpa, step, refused));
    this.names = step.names;
    this.ptrSummary = step.ptrSummary;
    this.forward = new Array<AddressOutcome | undefined>(step.names.length);
    this.forwardLeft = step.names.length;
    // All names at once, since one confirmed name is enough.
    for (let slot = 0; slot < step.names.length; slot++) {
      const cached = this.plan.cache.askAddresses(step.names[slot] as string, this.client.family, this, slot);
      if (cached !== undefined) this.onForward(cached, slot);
    }
  }

  private onForward(outcome: AddressOutcome, slot: number): void {
    if (this.forward[slot] !== undefined || this.result !== undefined) return;
    this.forward[slot] = outcome;
    if (--this.forwardLeft > 0) return;
    const client = this.client;
    const checks = this.names.map((name, i) => forwardCheck(name, this.forward[i] as AddressOutcome, client));
    this.onResult(fromForward(this.arpa, this.ptrSummary as IprevResult['ptr'], checks));
  }

  private onHelo(outcome: AddressOutcome): void {
    this.heloOutcome = outcome;
    if (this.result !== undefined) this.onResult(this.result);
  }

  /** The client is classified; the HELO name may still be waited for. */
  private onResult(result: IprevResult): void {
    this.result = result;
    // heloAsked: the HELO name was left to look up and helo_mismatch_action uses its lookup.
    const helo = this.helo ?? heloOfName(this.heloName, result.confirmedNames, this.heloAsked, this.heloOutcome, this.client);
    if (helo === undefined) return;
    this.end(judge(this.unfinished(), result, helo, this.config, this.policy));
  }

  private end(judgement: Judgement): void {
    const judged = this.judged;
    this.finish();
    judged(judgement, this.allCached);
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    const failed = this.failed;
    this.finish();
    failed(error);
  }

  /**
   * Done: the timer stops, and what the lookups gathered is let go of, and the request, and who
   * was to hear the judgement (the pipeline's reply closure: the request, its connection).
   * Queries this request still waits for keep it as their listener until they end (past its
   * deadline, c-ares' own retries): under a hostile zone's flood of fifty-name answers that held
   * every gathered answer, and a request that waited its turn kept its connection as long again;
   * a request kept would keep the text it was read in (up to LIMITS.maxPinnedRequestChars).
   */
  private finish(): void {
    this.finished = true;
    clearTimeout(this.timer);
    this.judged = IGNORED;
    this.failed = IGNORED;
    this.names = [];
    this.forward = [];
    this.ptrSummary = undefined;
    this.result = undefined;
    this.heloOutcome = undefined;
    this.request = undefined;
    this.heloName = '';
  }

  /** The request; only a lookup that has not finished reads it (settled() and timeOut() return early after). */
  private unfinished(): PolicyRequest<KnownClient> {
    if (this.request === undefined) throw new Error('cold lookup used after it finished');
    return this.request;
  }
}

/** The deadline timer's callback: the expiry is paced like any outcome (src/dns/pacing.ts). */
function expire(lookup: ColdLookup): void {
  paced(() => lookup.timeOut());
}
