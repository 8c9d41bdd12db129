/**
 * Optional Prometheus endpoint (`metrics_listen`): decisions, DNS queries and their latency,
 * cache hits/misses/in-flight joins, connections and protocol errors, the throttle store's state
 * and errors (while an action is throttle); plus `/healthz`. The only importer of prom-client.
 * Off by default: then every call is a no-op.
 *
 * A peer of this port gets no more than a scraper needs: peers outside metrics_allow are closed
 * at once, at most LIMITS.maxMetricsConnections are open (the longest-open idle one makes room),
 * and each is bounded in time (headers, request, keep-alive, idle), so the port can neither hold
 * the daemon's file descriptors nor keep connections open for good.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { Health } from './health.js';
import { inNetworks, parseClientIp, type Network } from '../util/ip.js';
import { LIMITS } from '../config/limits.js';
import type { CacheStats } from '../dns/cache.js';
import type { Logger } from '../log/logger.js';
import type { ServerStats } from './server.js';
import type { ThrottleCounters, ThrottleStoreState } from './throttle-types.js';

export type QueryType = 'ptr' | 'a' | 'aaaa';

export interface Metrics {
  decision(check: string, result: string, action: string): void;
  dnsQuery(type: QueryType, outcome: string, seconds: number): void;
  /** `host:port` of the endpoint, when on. */
  readonly address: string | undefined;
  /** A reload's metrics_allow, for connections from now on. */
  updateAllow(networks: readonly Network[]): void;
  close(): Promise<void>;
}

export const noMetrics: Metrics = {
  decision: () => undefined,
  dnsQuery: () => undefined,
  address: undefined,
  updateAllow: () => undefined,
  close: async () => undefined,
};

export interface MetricSources {
  server(): ServerStats;
  cache(): CacheStats;
  /** New clients answered without DNS: while the heap was nearly full, or too many waited for DNS. */
  shed(): { heap: number; waiting: number };
  /** Requests waiting for DNS now. */
  waiting(): number;
  /** Log lines dropped because stdout did not keep up. */
  droppedLogLines(): number;
  /** Whether the policy listener answers a request now (src/daemon/health.ts). */
  health(): Promise<Health>;
  /** The throttle store (src/daemon/throttling.ts): its state and counters, undefined while no action is throttle. */
  readonly throttle?: {
    readonly state: ThrottleStoreState | undefined;
    counters(): ThrottleCounters | undefined;
  };
}

/** The /healthz body while the policy listener answers but the shared throttle store does not. */
export const DEGRADED_THROTTLE = 'degraded: throttle store unavailable, budgets kept in memory';

type PromClient = typeof import('prom-client');
type Registry = import('prom-client').Registry;

/** Start the endpoint; resolves once it listens. */
export async function startMetrics(
  listen: { host: string; port: number },
  allow: readonly Network[],
  sources: MetricSources,
  logger: Logger,
): Promise<Metrics> {
  // Loaded only when metrics are on: prom-client is the largest dependency, and node:http alone
  // is a few ms of every start-up.
  const [{ default: client }, { default: http }] = await Promise.all([import('prom-client'), import('node:http')]);
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'fcrdns_' });
  const { decisions, queries, latency } = registerCounted(client, registry);
  registerServerCollected(client, registry, sources);
  registerCollected(client, registry, sources);
  const scrape = throttleMetrics(client, registry, sources);
  const allowed = { networks: allow };
  const server = http.createServer(
    {
      headersTimeout: LIMITS.metricsHeadersTimeoutMs,
      requestTimeout: LIMITS.metricsRequestTimeoutMs,
      connectionsCheckingInterval: LIMITS.metricsTimeoutCheckMs,
    },
    (request, response) => answer(request, response, scrape, sources, logger),
  );
  boundConnections(server, () => allowed.networks, logger);
  server.on('error', (error) => logger.error({ err: error }, 'metrics listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port }, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : listen.port;
  const address = listen.host.includes(':') ? `[${listen.host}]:${port}` : `${listen.host}:${port}`;
  logger.info({ metrics: address }, 'metrics endpoint listening');
  return {
    address,
    decision: (check, result, action) => decisions.inc({ check, result, action }),
    dnsQuery: (type, outcome, seconds) => {
      queries.inc({ type, outcome });
      latency.observe({ type, outcome }, seconds);
    },
    updateAllow: (networks) => {
      allowed.networks = networks;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}

/** The metrics the daemon counts as it goes: decisions, DNS queries and their latency. */
function registerCounted(client: PromClient, registry: Registry) {
  const decisions = new client.Counter({
    name: 'fcrdns_decisions_total',
    help: 'Decisions by check, result class (or skipped) and action',
    labelNames: ['check', 'result', 'action'] as const,
    registers: [registry],
  });
  const queries = new client.Counter({
    name: 'fcrdns_dns_queries_total',
    help: 'DNS queries sent, by type and outcome (answer, not_found, temporary)',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'fcrdns_dns_query_duration_seconds',
    help: 'DNS query latency by type and outcome (answer, not_found, temporary)',
    labelNames: ['type', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { decisions, queries, latency };
}

/** The policy listener's figures, read at scrape time. */
function registerServerCollected(client: PromClient, registry: Registry, sources: MetricSources): void {
  new client.Gauge({
    name: 'fcrdns_open_connections',
    help: 'Open policy connections',
    registers: [registry],
    collect() {
      this.set(sources.server().open);
    },
  });
  new client.Counter({
    name: 'fcrdns_protocol_errors_total',
    help: 'Broken requests (connection closed without reply)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.server().protocolErrors);
    },
  });
  new client.Counter({
    name: 'fcrdns_connections_total',
    help:
      'Connections by fate: accepted, refused (outside listen_allow), evicted (at max_connections), ' +
      'cut (its unfinished requests held the most when all held too many bytes), revoked (its peer left listen_allow on reload)',
    labelNames: ['fate'] as const,
    registers: [registry],
    collect() {
      const stats = sources.server();
      this.reset();
      this.inc({ fate: 'accepted' }, stats.accepted);
      this.inc({ fate: 'refused' }, stats.refused);
      this.inc({ fate: 'evicted' }, stats.evicted);
      this.inc({ fate: 'cut' }, stats.heldCut ?? 0);
      this.inc({ fate: 'revoked' }, stats.revoked ?? 0);
    },
  });
  new client.Gauge({
    name: 'fcrdns_held_request_bytes',
    help: 'Bytes of unfinished and deferred requests held now, all policy connections together',
    registers: [registry],
    collect() {
      this.set(sources.server().heldBytes ?? 0);
    },
  });
}

/** The other figures read from the daemon's parts at scrape time. */
function registerCollected(client: PromClient, registry: Registry, sources: MetricSources): void {
  new client.Counter({
    name: 'fcrdns_cache_events_total',
    help: 'Lookup cache events: hit, miss (a query was sent), inflight (joined a query already under way)',
    labelNames: ['event'] as const,
    registers: [registry],
    collect() {
      const stats = sources.cache();
      this.reset();
      this.inc({ event: 'hit' }, stats.hits);
      this.inc({ event: 'miss' }, stats.misses);
      this.inc({ event: 'inflight' }, stats.inflightJoins);
    },
  });
  new client.Counter({
    name: 'fcrdns_shed_requests_total',
    help: 'New clients answered per temperror_action without DNS, by reason: heap (nearly full), waiting (too many requests waiting for DNS)',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      const shed = sources.shed();
      this.reset();
      this.inc({ reason: 'heap' }, shed.heap);
      this.inc({ reason: 'waiting' }, shed.waiting);
    },
  });
  new client.Gauge({
    name: 'fcrdns_requests_waiting_for_dns',
    help: 'Requests waiting for DNS answers now',
    registers: [registry],
    collect() {
      this.set(sources.waiting());
    },
  });
  new client.Counter({
    name: 'fcrdns_log_lines_dropped_total',
    help: 'Log lines dropped because stdout (journald, a pipe) did not keep up',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.droppedLogLines());
    },
  });

  new client.Gauge({
    name: 'fcrdns_policy_listener_up',
    help: 'Whether the policy listener answered a request of the daemon\'s own at this scrape (1) or not (0): what /healthz reports',
    registers: [registry],
    async collect() {
      this.set((await sources.health()).ok ? 1 : 0);
    },
  });
}

/**
 * The throttle store's figures, read at scrape time, and only while an action is throttle (a
 * reload can switch throttling on or off): they live in a registry of their own, merged into a
 * scrape's only while there is a store. The state gauge is 1 for the current state, 0 for the
 * others. Throttled answers themselves are fcrdns_decisions_total{action="throttled"}.
 */
function throttleMetrics(client: PromClient, registry: Registry, sources: MetricSources): () => Registry {
  const throttleRegistry = new client.Registry();
  const counter = (name: string, help: string, read: (counts: ThrottleCounters) => number) =>
    new client.Counter({
      name,
      help,
      registers: [throttleRegistry],
      collect() {
        const counts = sources.throttle?.counters();
        this.reset();
        this.inc(counts ? read(counts) : 0);
      },
    });
  counter('fcrdns_throttle_store_errors_total', 'Failed steps and connection errors of the shared throttle store (refused, dropped, auth, OOM, garbage, timeouts)', (c) => c.storeErrors);
  counter('fcrdns_throttle_store_timeouts_total', 'Shared throttle store steps that got no answer within throttle_store_timeout (also in errors)', (c) => c.storeTimeouts);
  counter('fcrdns_throttle_store_fallbacks_total', 'Throttle steps answered from this host\'s memory while a shared store is configured', (c) => c.fallbacks);
  counter('fcrdns_throttle_store_script_loads_total', 'SCRIPT LOADs sent to the shared throttle store (one per connect, one per NOSCRIPT)', (c) => c.scriptLoads);
  counter('fcrdns_throttle_evicted_live_total', 'Networks the in-memory throttle store forgot before their budget came back (its key cap was reached)', (c) => c.evictedLive);
  const states: readonly ThrottleStoreState[] = ['shared', 'degraded', 'memory'];
  new client.Gauge({
    name: 'fcrdns_throttle_store_state',
    help: 'Where throttle budgets live now: shared (Redis/Valkey), degraded (the shared store is away, memory answers) or memory (no shared store configured); 1 for the current state',
    labelNames: ['state'] as const,
    registers: [throttleRegistry],
    collect() {
      const current = sources.throttle?.state;
      for (const state of states) this.set({ state }, state === current ? 1 : 0);
    },
  });
  return () => (sources.throttle?.state === undefined ? registry : client.Registry.merge([registry, throttleRegistry]));
}

/** GET /healthz: 200 `ok` or `degraded: …` (the throttle store is away) while the policy listener answers, 503 when it does not. */
function healthz(response: http.ServerResponse, sources: MetricSources, logger: Logger): void {
  sources.health().then((health) => {
    const text = { 'content-type': 'text/plain' };
    if (!health.ok) response.writeHead(503, text).end(`policy listener not answering: ${health.reason}\n`);
    else if (sources.throttle?.state === 'degraded') response.writeHead(200, text).end(`${DEGRADED_THROTTLE}\n`);
    else response.writeHead(200, text).end('ok\n');
  }, (error: unknown) => {
    logger.error({ err: error }, 'health check failed');
    response.writeHead(500).end();
  });
}

/** GET /metrics, GET /healthz; nothing else. `scrape` gives the registry with the metrics of this moment. */
function answer(request: http.IncomingMessage, response: http.ServerResponse, scrape: () => Registry, sources: MetricSources, logger: Logger): void {
  if (request.method !== 'GET') {
    response.writeHead(405).end();
    return;
  }
  if (request.url === '/healthz') {
    healthz(response, sources, logger);
    return;
  }
  if (request.url !== '/metrics') {
    response.writeHead(404).end();
    return;
  }
  const registry = scrape();
  registry.metrics().then(
    (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
    (error: unknown) => {
      logger.error({ err: error }, 'metrics collection failed');
      response.writeHead(500).end();
    },
  );
}

/**
 * Peers outside metrics_allow are closed at once; past LIMITS.maxMetricsConnections the
 * longest-open connection not in the middle of an answer is closed to make room (a scraper
 * reconnects), or the newcomer when every one is answering. Idle sockets close after
 * metricsIdleTimeoutMs (node destroys a timed-out socket nobody listens for), keep-alive ones
 * after metricsKeepAliveTimeoutMs.
 */
function boundConnections(server: http.Server, allow: () => readonly Network[], logger: Logger): void {
  const open = new Map<net.Socket, { answering: boolean }>();
  server.keepAliveTimeout = LIMITS.metricsKeepAliveTimeoutMs;
  server.setTimeout(LIMITS.metricsIdleTimeoutMs);
  server.on('connection', (socket: net.Socket) => {
    const peer = socket.remoteAddress ?? '';
    const ip = parseClientIp(peer);
    if (!ip || !inNetworks(ip, allow())) {
      logger.warn({ peer: peer.slice(0, 64) }, 'metrics connection from a peer outside metrics_allow closed');
      socket.destroy();
      return;
    }
    if (open.size >= LIMITS.maxMetricsConnections) {
      const idle = [...open].find(([, state]) => !state.answering)?.[0];
      logger.warn({ max: LIMITS.maxMetricsConnections }, 'metrics connection limit reached: closing the longest-open idle connection');
      if (idle === undefined) {
        socket.destroy();
        return;
      }
      open.delete(idle);
      idle.destroy();
    }
    open.set(socket, { answering: false });
    socket.once('close', () => open.delete(socket));
  });
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    const state = open.get(request.socket);
    if (state === undefined) return;
    state.answering = true;
    const idle = (): void => {
      state.answering = false;
    };
    response.once('finish', idle);
    response.once('close', idle);
  });
}
