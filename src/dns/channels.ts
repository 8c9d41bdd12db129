/**
 * The c-ares channels the system resolver asks through: one renewed every
 * LIMITS.resolverChannelMs, or, where c-ares keeps a query cache of its own, every
 * LIMITS.resolverChannelQueries queries too (src/dns/resolver.ts createSystemResolver says why).
 *
 * And the memory that query cache holds where it cannot be turned off (Debian 13's node,
 * src/dns/resolver.ts caresCachesQueries). Each channel caches its answers in native memory,
 * which is freed only when V8 collects the channel's JavaScript object, and V8 cannot see that
 * memory: it collects when its own heap asks for it. A daemon that makes little garbage (the cold
 * path, src/daemon/cold-path.ts) therefore kept retired channels, and a hostile zone's 64 KB
 * answers in them, for longer: 170 MB at the peak of test/integration/hostile-zone.test.ts on
 * Debian 13's node against 156 MB for a daemon that made more garbage, and 137 MB with a full
 * collection every 500 ms. So the answers received are counted per channel, a channel's count is
 * taken off once V8 has collected it (FinalizationRegistry), and past
 * LIMITS.resolverCachedAnswerBytes a full collection is asked for, at most every
 * LIMITS.resolverForcedGcMs. Ordinary answers never come near the bound.
 */
import { Resolver } from 'node:dns';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { LIMITS } from '../config/limits.js';
import type { DnsCallback, DnsCallbacks } from './outcome.js';

/** What a channel is made with (DnsSettings' shape). */
interface ChannelSettings {
  readonly servers: readonly string[];
  readonly timeoutMs: number;
  readonly tries: number;
}

function newChannel(settings: ChannelSettings): InstanceType<typeof Resolver> {
  const channel = new Resolver({ timeout: settings.timeoutMs, tries: settings.tries });
  if (settings.servers.length > 0) channel.setServers([...settings.servers]);
  return channel;
}

/**
 * The channel to ask: renewed every LIMITS.resolverChannelMs, which picks up a changed
 * /etc/resolv.conf (when no dns_servers are set) and moves the queries to a new UDP source port
 * (c-ares keeps one per server for a channel's life; the resolver is best local, README, but one
 * that is not is then not asked from one port for good). Where c-ares caches answers itself
 * (`memory` given: caresCachesQueries), also every LIMITS.resolverChannelQueries queries, with each
 * answer counted against the channel it came on (ChannelMemory); elsewhere a new channel per 32
 * queries would cost a new UDP socket, ~4 µs of a new client's CPU. Queries already sent finish
 * on their old channel, which node frees once V8 collects it.
 */
export function rotatingChannels(settings: ChannelSettings, now: () => number = Date.now, memory?: ChannelMemory): DnsCallbacks {
  let channel = newChannel(settings);
  let answers = memory?.track(channel);
  let channelQueries = 0;
  let channelBorn = now();
  const current = (): InstanceType<typeof Resolver> => {
    const full = memory !== undefined && ++channelQueries > LIMITS.resolverChannelQueries;
    if (full || now() - channelBorn > LIMITS.resolverChannelMs) {
      channel = newChannel(settings);
      answers = memory?.track(channel);
      channelQueries = 1;
      channelBorn = now();
    }
    return channel;
  };
  /** c-ares' callback, counting the answer against the channel asked (read after current()). */
  const counted = <T extends ReadonlyArray<string | { address: string }>>(done: DnsCallback<T>): DnsCallback<T> => {
    if (memory === undefined || answers === undefined) return done;
    const on = answers;
    return (error, records) => {
      memory.answered(on, answerBytes(error ? undefined : records));
      done(error, records);
    };
  };
  return {
    resolvePtr: (name, done) => current().resolvePtr(name, counted(done)),
    resolve4: (name, options, done) => current().resolve4(name, options, counted(done)),
    resolve6: (name, options, done) => current().resolve6(name, options, counted(done)),
  };
}

/** The count of what c-ares' own cache holds, with a full collection past its bound. */
export function watchedChannelMemory(): ChannelMemory {
  return new ChannelMemory(fullCollection(), () => performance.now());
}

/** What one channel's answers are estimated to hold in c-ares' cache. */
export interface ChannelAnswers {
  bytes: number;
}

/** A PTR answer's or an address answer's estimated size in c-ares' cache (parsed records, names). */
export function answerBytes(records: ReadonlyArray<string | { address: string }> | undefined): number {
  let bytes = 128;
  for (const record of records ?? []) bytes += 64 + (typeof record === 'string' ? record.length : record.address.length);
  return bytes;
}

export class ChannelMemory {
  private held = 0;
  private lastCollection = Number.NEGATIVE_INFINITY;
  private readonly collected = new FinalizationRegistry<ChannelAnswers>((answers) => {
    this.held -= answers.bytes;
  });

  constructor(
    private readonly collect: (() => void) | undefined,
    private readonly now: () => number,
  ) {}

  /** A new channel's count, taken off once `channel` has been collected. */
  track(channel: object): ChannelAnswers {
    const answers: ChannelAnswers = { bytes: 0 };
    this.collected.register(channel, answers);
    return answers;
  }

  /** An answer arrived on a channel: count it, and collect when the bound is passed. */
  answered(answers: ChannelAnswers, bytes: number): void {
    answers.bytes += bytes;
    this.held += bytes;
    if (this.held <= LIMITS.resolverCachedAnswerBytes || this.collect === undefined) return;
    const now = this.now();
    if (now - this.lastCollection < LIMITS.resolverForcedGcMs) return;
    this.lastCollection = now;
    this.collect();
  }

  /** Bytes counted in channels not yet collected (current and retired). */
  get bytesHeld(): number {
    return this.held;
  }
}

/**
 * A full collection, where node lets a program ask for one: `--expose-gc` set at run time gives
 * new contexts a `gc` function (the main context is unchanged). Undefined where that fails.
 */
export function fullCollection(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
