/**
 * The daemon's lifecycle: start (the parts, then the metrics endpoint, then the policy port,
 * then `started`), reload (a new configuration, and a new DNS cache when DNS or cache settings
 * changed) and close. What happens to one request is src/daemon/pipeline.ts; `startDaemon` returns a
 * handle so tests (and cli.ts) drive it: its address, reload and close.
 */
import { Admission } from './admission.js';
import { LookupCache, type CacheSettings, type CacheStats, type Clock } from '../dns/cache.js';
import type { Config } from '../config/config.js';
import { createSystemResolver, directLookups, queryDeadlineMs, type DnsResolver } from '../dns/resolver.js';
import { PolicyProbe } from './health.js';
import type { HeapReading } from './heap-guard.js';
import { policyFor } from '../judge/judgement.js';
import { KnownClients } from './known-clients.js';
import { droppedLogLines, logAlways, type Logger } from '../log/logger.js';
import { MessageMemory, type MessageVerdict } from './message-memory.js';
import { noMetrics, startMetrics, type Metrics } from './metrics.js';
import { createPipeline, type PipelineState } from './pipeline.js';
import { settingChanges } from '../config/reload.js';
import { startPolicyServer, type PolicyServer, type ServerOptions, type ServerStats } from './server.js';
import { Throttling } from './throttling.js';

export interface DaemonDeps {
  config: Config;
  logger: Logger;
  /** A resolver to use instead of c-ares on config.dnsServers (tests). */
  resolver?: DnsResolver;
  clock?: Clock;
  /** Overrides for server timers (tests). */
  idleTimeoutMs?: number;
  requestReadTimeoutMs?: number;
  /** Reads heap use for load shedding (tests); V8's heap statistics by default. */
  heapReading?: () => HeapReading;
  /** Starts the listener (a bench drives the request handler without sockets). */
  startServer?: (options: ServerOptions<MessageVerdict>) => Promise<PolicyServer>;
}

export interface Daemon {
  readonly address: string;
  /** `host:port` of the Prometheus endpoint, when metrics_listen is set. */
  readonly metricsAddress: string | undefined;
  readonly port: number | undefined;
  readonly serverStats: ServerStats;
  readonly cache: LookupCache;
  /** Apply a new configuration; the listener itself only changes on restart. */
  reload(config: Config): void;
  close(): Promise<void>;
}

function cacheSettings(config: Config): CacheSettings {
  return {
    size: config.cacheSize,
    maxTtlMs: config.cacheMaxTtlMs,
    ptrTtlMs: config.ptrTtlMs,
    negativeTtlMs: config.negativeTtlMs,
    temperrorTtlMs: config.temperrorTtlMs,
  };
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** What the metrics endpoint reports in the moment before the policy port listens. */
const NO_CONNECTIONS_YET: ServerStats = { open: 0, accepted: 0, refused: 0, evicted: 0, protocolErrors: 0 };

/** The DNS cache for a configuration, its queries timed into `metrics()` (swapped at start). */
function makeCache(config: Config, deps: DaemonDeps, stats: CacheStats, metrics: () => Metrics): LookupCache {
  const resolver = deps.resolver ?? createSystemResolver({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries });
  const deadline = queryDeadlineMs({ timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries });
  const observe = (type: 'ptr' | 'a' | 'aaaa', outcome: string, seconds: number) => metrics().dnsQuery(type, outcome, seconds);
  return new LookupCache(directLookups(resolver, deadline, observe), cacheSettings(config), deps.clock, stats);
}

/**
 * Ready means ready: the metrics endpoint listens before the policy port accepts anything, so a
 * scrape right after start finds it and no decision goes uncounted; `started` is logged by the
 * caller once both listen. When the policy port cannot be had (in use, no permission), the
 * metrics port is closed again.
 */
async function startListeners(
  deps: DaemonDeps,
  state: PipelineState,
  parts: { handle: ServerOptions<MessageVerdict>['handle']; messages: MessageMemory; admission: Admission; cacheStats: CacheStats; throttling: Throttling },
): Promise<PolicyServer> {
  const { config } = state;
  let policyServer: PolicyServer | undefined;
  const probe = new PolicyProbe(
    () => state.config.listenAllow,
    () => policyServer?.stats.refused ?? 0,
  );
  if (config.metricsListen) {
    state.metrics = await startMetrics(
      config.metricsListen,
      config.metricsAllow,
      {
        server: () => policyServer?.stats ?? NO_CONNECTIONS_YET,
        cache: () => parts.cacheStats,
        shed: () => parts.admission.shed(),
        waiting: () => parts.admission.waiting,
        droppedLogLines: () => droppedLogLines(deps.logger),
        health: () => probe.check(),
        throttle: parts.throttling,
      },
      deps.logger,
    );
  }
  try {
    policyServer = await (deps.startServer ?? startPolicyServer)({
      listen: config.listen,
      listenMode: config.listenMode,
      listenAllow: config.listenAllow,
      maxConnections: config.maxConnections,
      logger: deps.logger,
      // The health probe's requests are answered before the pipeline: no decision, no line.
      handle: probe.answering(parts.handle),
      connectionEnded: (connection) => parts.messages.connectionEnded(connection, state.config),
      ...(deps.idleTimeoutMs !== undefined ? { idleTimeoutMs: deps.idleTimeoutMs } : {}),
      ...(deps.requestReadTimeoutMs !== undefined ? { requestReadTimeoutMs: deps.requestReadTimeoutMs } : {}),
    });
  } catch (error) {
    await state.metrics.close();
    throw error;
  }
  probe.listening(config.listen, policyServer.port);
  return policyServer;
}

/**
 * One line per setting a reload changes, old → new: at warn when it changes who is judged, how,
 * or the answer (mode, actions, resolver, networks, exemptions), else at info. Never held back
 * by the warning window: it is the operator's own action.
 */
function logChanges(logger: Logger, previous: Config, next: Config): void {
  logAlways(() => {
    for (const change of settingChanges(previous, next)) {
      const fields = { key: change.key, old: change.old, new: change.new };
      if (change.weighty) logger.warn(fields, 'reload changes a setting of the policy, resolver or networks');
      else logger.info(fields, 'reload changes a setting');
    }
  });
}

export async function startDaemon(deps: DaemonDeps): Promise<Daemon> {
  const { logger } = deps;
  const cacheStats: CacheStats = { hits: 0, misses: 0, inflightJoins: 0 };
  const timedInto = (): Metrics => state.metrics;
  const state: PipelineState = {
    config: deps.config,
    policy: policyFor(deps.config),
    cache: makeCache(deps.config, deps, cacheStats, timedInto),
    metrics: noMetrics,
  };
  const messages = new MessageMemory(deps.clock);
  const admission = new Admission(logger, deps.heapReading);
  const throttling = new Throttling(logger, deps.config);
  const handle = createPipeline({ state, clients: new KnownClients(), messages, admission, logger, throttling });
  let server: PolicyServer;
  try {
    server = await startListeners(deps, state, { handle, messages, admission, cacheStats, throttling });
  } catch (error) {
    admission.close();
    await throttling.close();
    throw error;
  }
  const metrics = state.metrics;
  logger.info({ source: deps.config.source, listen: server.address, config: Object.fromEntries(deps.config.effective) }, 'started');

  return {
    address: server.address,
    metricsAddress: metrics.address,
    port: server.port,
    serverStats: server.stats,
    get cache() {
      return state.cache;
    },
    reload(next: Config) {
      const previous = state.config;
      logChanges(logger, previous, next);
      if (!sameJson(previous.listen, next.listen) || previous.listenMode !== next.listenMode || !sameJson(previous.metricsListen, next.metricsListen)) {
        logAlways(() => logger.warn({ listen: Object.fromEntries(next.effective).listen }, 'listen and metrics_listen changes take effect on restart'));
      }
      const dnsChanged =
        !sameJson(previous.dnsServers, next.dnsServers) || previous.dnsTimeoutMs !== next.dnsTimeoutMs || previous.dnsTries !== next.dnsTries;
      if (dnsChanged || !sameJson(cacheSettings(previous), cacheSettings(next))) state.cache = makeCache(next, deps, cacheStats, timedInto);
      messages.clear();
      logger.level = next.logLevel;
      server.updateLimits({ listenAllow: next.listenAllow, maxConnections: next.maxConnections });
      metrics.updateAllow(next.metricsAllow);
      throttling.apply(next);
      state.config = next;
      state.policy = policyFor(next);
      logger.info({ source: next.source, config: Object.fromEntries(next.effective) }, 'reloaded');
    },
    async close() {
      await server.close();
      await metrics.close();
      admission.close();
      await throttling.close();
      logger.info('stopped');
    },
  };
}
