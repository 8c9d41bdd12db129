/**
 * The judgement memo: a client's last judgement, kept on its KnownClient record and reused for
 * its next request without reading the DNS cache again, for as long as that is exactly what
 * judging afresh would give. It is valid while all of this holds:
 * - the request greets with the same HELO name (the HELO status is part of the judgement);
 * - the configuration is the same object (a reload makes a new one: mode, actions, pass_names…);
 * - the DNS cache is the same object (a reload that changes DNS or cache settings makes a new
 *   one) and has not been cleared since (its generation);
 * - no answer it rests on has expired (`until`, the first of their expiry times).
 * Reusing it counts its answers as cache hits, as reading them again would.
 */
import type { LookupCache } from '../dns/cache.js';
import type { Config } from '../config/config.js';
import type { Judgement } from './judgement.js';
import { flatCopy } from '../util/text.js';

export interface JudgementMemo extends Judgement {
  /** The HELO name it was made for (a flat copy: it outlives the request). */
  readonly helo: string;
  readonly config: Config;
  readonly cache: LookupCache;
  /** The cache's clear() count when the answers were read. */
  readonly generation: number;
  /** When the first of the answers it rests on expires (the cache's clock). */
  readonly until: number;
  /** How many cached answers it rests on. */
  readonly answers: number;
}

/** The memo, when it still stands for this request; its answers are counted as cache hits. */
export function reusedMemo(memo: JudgementMemo | undefined, helo: string, config: Config, cache: LookupCache): JudgementMemo | undefined {
  if (
    memo === undefined ||
    memo.helo !== helo ||
    memo.config !== config ||
    memo.cache !== cache ||
    memo.generation !== cache.generation ||
    !(cache.now() < memo.until)
  ) {
    return undefined;
  }
  cache.countHits(memo.answers);
  return memo;
}

/** A memo of a judgement made from cached answers (every memo has this one shape). */
export function memoOf(judgement: Judgement, helo: string, config: Config, cache: LookupCache, until: number, answers: number): JudgementMemo {
  return {
    verdict: judgement.verdict,
    action: judgement.action,
    reply: judgement.reply,
    resultLabel: judgement.resultLabel,
    // Flat copies: a memo's outcome is copied into a line per request for as long as it stands
    // (a slice would be two objects to fetch each time). A judgement used once (a new client's,
    // src/daemon/cold-path.ts) is written from its slice and never pays for the copy.
    json: flatCopy(judgement.json),
    // A throttled class takes a step per message from the memo too (undefined otherwise: one shape).
    limited: judgement.limited && { reply: judgement.limited.reply, json: flatCopy(judgement.limited.json) },
    helo: flatCopy(helo),
    config,
    cache,
    generation: cache.generation,
    until,
    answers,
  };
}
