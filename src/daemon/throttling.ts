/**
 * The `throttle` action in the running daemon (issue 27): the store of budgets kept across
 * reloads, and one step of a judged message's network through it. A message of a throttled
 * class passes while its network has budget left and is answered with the verdict's
 * `limitedReply` once it is spent; the pipeline asks once per message (later recipients reuse
 * the message's verdict), and the decision line says which network, how much was left and
 * whether the shared store or this host's memory answered.
 *
 * A signal that is switched off costs nothing: with no action set to throttle there is no
 * store at all — no memory for budgets and no connection to Redis.
 */
import type { Config } from '../config/config.js';
import { effectiveActions } from '../config/presets.js';
import type { Judgement } from '../judge/judgement.js';
import { throttleKey, throttleParamsOf, type GcraParams } from '../judge/throttle.js';
import type { Logger } from '../log/logger.js';
import type { ClientIp } from '../util/ip.js';
import { createThrottleStore, type ThrottleDecision, type ThrottleStore, type ThrottleStoreState } from './throttle-store.js';

/** Whether any action of a configuration is `throttle`. */
export function throttleWanted(config: Config): boolean {
  const actions = effectiveActions(config);
  return Object.values(actions).includes('throttle') || config.genericAction === 'throttle' || config.heloMismatchAction === 'throttle';
}

/** What decides which store: a change of any of these makes a new one. */
const storeIdentity = (config: Config): string =>
  JSON.stringify([config.throttleStore, config.throttleStorePasswordFile, config.throttleStoreTimeoutMs]);

export class Throttling {
  private store: ThrottleStore | undefined;
  private identity = '';
  private prefixes = { ipv4: 24, ipv6: 64 };

  /** With the configuration the daemon starts with. */
  constructor(
    private readonly logger: Logger,
    config: Config,
  ) {
    this.apply(config);
  }

  /** The store as `config` wants it: none, the same one with new settings, or a new one. */
  apply(config: Config): void {
    if (!throttleWanted(config)) return this.drop();
    this.prefixes = { ipv4: config.throttlePrefixIpv4, ipv6: config.throttlePrefixIpv6 };
    const params = throttleParamsOf(config);
    if (this.store && this.identity === storeIdentity(config)) return this.store.setParams(params);
    this.drop();
    const store = createThrottleStore({
      params,
      target: config.throttleStore,
      passwordFile: config.throttleStorePasswordFile === '' ? undefined : config.throttleStorePasswordFile,
      deadlineMs: config.throttleStoreTimeoutMs,
      logger: this.logger,
    });
    // An unreadable password file: said once, and this host's memory throttles (fail open).
    if (typeof store === 'string') {
      this.logger.error({ throttle_store_password_file: config.throttleStorePasswordFile, problem: store }, 'throttle store not used: budgets are kept in this host\'s memory');
      this.store = this.memoryStore(params);
    } else this.store = store;
    this.identity = storeIdentity(config);
  }

  /** The network a client is throttled as, under the current prefixes. */
  keyOf(client: ClientIp): string {
    return throttleKey(client, this.prefixes);
  }

  /** One step of a network, synchronous from memory, a promise from the shared store. */
  take(key: string): ThrottleDecision | Promise<ThrottleDecision> | undefined {
    return this.store?.take(key, Date.now());
  }

  /** `shared`, `degraded` (the shared store is away; memory answers) or `memory`; undefined when off. */
  get state(): ThrottleStoreState | undefined {
    return this.store?.state;
  }

  counters(): ReturnType<ThrottleStore['counters']> | undefined {
    return this.store?.counters();
  }

  async close(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    await store?.close();
  }

  private drop(): void {
    const store = this.store;
    this.store = undefined;
    this.identity = '';
    void store?.close();
  }

  private memoryStore(params: GcraParams): ThrottleStore {
    const store = createThrottleStore({ params, target: { kind: 'memory' }, logger: this.logger });
    if (typeof store === 'string') throw new Error(store);
    return store;
  }
}

/**
 * The judgement a message of a throttled class gets: the passing or the spent-budget answer,
 * with the step's inputs in its decision line (the network key, what is left, which store).
 */
export function throttledJudgement(judgement: Judgement, decision: ThrottleDecision | undefined, key: string): Judgement {
  const limited = judgement.limited;
  if (!limited || !decision) return judgement;
  const fields = `,"throttle":{"key":${JSON.stringify(key)},"allowed":${decision.allowed},"left":${decision.remaining},"store":"${decision.source}"}`;
  if (decision.allowed) return { ...judgement, json: `${judgement.json}${fields}` };
  return { ...judgement, verdict: { ...judgement.verdict, reply: limited.reply }, reply: limited.reply, json: `${limited.json}${fields}` };
}
