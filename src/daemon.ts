/**
 * Wires the parts: server → request validation → exemptions → per-message memory → cached
 * lookups → iprev → policy → reply, then one log line. `startDaemon` returns a handle so tests
 * (and main.ts) drive it: its address, reload and close.
 */
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import { LookupCache, type CacheSettings, type Clock } from './cache.js';
import type { Config } from './config.js';
import { createSystemResolver, directLookups, queryDeadlineMs, withOverallDeadline, type DnsResolver } from './dns.js';
import { knownIprev, lookupIprev, type IprevResult } from './iprev.js';
import { inNetworks, parseClientIp, reverseName, type ClientIp, type Network } from './ip.js';
import { LIMITS } from './limits.js';
import { droppedLogLines, logDecision, outcomeFields, type Logger, type OutcomeFields } from './log.js';
import { authenticationResults } from './authres.js';
import { genericSignal, type GenericSignal } from './generic.js';
import { createHeapGuard, type HeapReading } from './heap-guard.js';
import { pacedStart } from './pacing.js';
import { heloFromLookup, heloLookupUsed, heloWithoutLookup, startHeloAssessment } from './helo.js';
import { noMetrics, startMetrics, type Metrics } from './metrics.js';
import { decide, effectiveActions, findExemption, matchesPassNames, type Exemption, type HeloStatus, type PolicySettings, type Verdict } from './policy.js';
import type { PolicyAttributes } from './protocol.js';
import { detachedRequest, parsePolicyRequest, type PolicyRequest } from './request.js';
import { detachedCopy, flatCopy } from './text.js';
import { startPolicyServer, type HandlerResult, type PolicyServer, type RequestContext, type ServerOptions, type ServerStats } from './server.js';

/**
 * What the daemon concluded about one client: the verdict, the reply, and (as OutcomeFields)
 * the log's outcome fields. Flat, so answering from it reads one object.
 */
interface Judgement extends OutcomeFields {
  readonly verdict: Verdict;
  /** verdict.action, kept here too (see above). */
  readonly action: Verdict['action'];
  readonly reply: string;
  /** The result as logged and counted: the iprev class, or `generic`. */
  readonly resultLabel: string;
}

/**
 * A client address as the daemon knows it: the parsed address, and what is worked out for it
 * and reused by its next requests, all in one object. A request answered from the cache reads
 * memory nobody touched since that client's last request, and on these machines each cold
 * object costs more than the decision itself: one record per client instead of a parse cache,
 * a judgement table and a membership table is what keeps that small.
 */
interface KnownClient extends ClientIp, Mutable<Judgement> {
  /** The skip_networks list `inSkipNetworks` was worked out for. */
  skipNetworks: readonly Network[] | undefined;
  inSkipNetworks: boolean;
  /*
   * The client's last judgement is the Judgement fields above, reused while every DNS answer it
   * rests on is fresh, and what follows says what it holds for. In the record itself, not in
   * an object of its own: that would be one more read of cold memory per request.
   */
  /** The HELO name it was made for (a flat copy). */
  judgedHelo: string;
  judgedConfig: Config | undefined;
  judgedCache: LookupCache | undefined;
  /** The cache's clear() count when the answers were read. */
  judgedGeneration: number;
  /** When the first of the answers it rests on expires (the cache's clock). */
  judgedUntil: number;
  /** How many cached answers it rests on (counted as cache hits each time it is reused). */
  judgedAnswers: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The judgement fields of a client not judged yet (never answered from: judgedUntil is -Infinity). */
const NOT_JUDGED: Judgement = {
  verdict: { action: 'dunno', reply: 'DUNNO', decidedBy: 'iprev' },
  action: 'dunno',
  reply: 'DUNNO',
  resultLabel: '',
  json: '',
};

/**
 * A message judged on a connection: its later recipients get the same verdict. Postfix sends
 * every request of one message from one smtpd process over that process's one connection to
 * this service (POSTFIX-FACTS 2), so the connection itself remembers its current message.
 */
interface MessageVerdict {
  /** Postfix's `instance` (a copy: it outlives the request). */
  readonly instance: string;
  /** The client's canonical address: `instance` only counts for the same client. */
  readonly clientText: string;
  readonly verdict: Verdict;
  readonly config: Config;
}

/** The outcome of an exempted request, per exemption: the same every time. */
const EXEMPTED: Record<Exemption, OutcomeFields> = {
  pass_recipient: outcomeFields({ result: 'skipped', reason: 'pass_recipient', action: 'dunno', reply: 'DUNNO' }),
  authenticated: outcomeFields({ result: 'skipped', reason: 'authenticated', action: 'dunno', reply: 'DUNNO' }),
  skip_network: outcomeFields({ result: 'skipped', reason: 'skip_network', action: 'dunno', reply: 'DUNNO' }),
};

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

/** The decision settings of a configuration, with its action table computed once, not per request. */
function policyFor(config: Config): PolicySettings {
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

/** What the metrics endpoint reports in the moment before the policy port listens. */
const NO_CONNECTIONS_YET: ServerStats = { open: 0, accepted: 0, refused: 0, evicted: 0, protocolErrors: 0 };

export async function startDaemon(deps: DaemonDeps): Promise<Daemon> {
  const { logger } = deps;
  let config = deps.config;
  let metrics: Metrics = noMetrics;
  const cacheStats = { hits: 0, misses: 0, inflightJoins: 0 };
  const makeCache = (current: Config): LookupCache => {
    const resolver =
      deps.resolver ??
      createSystemResolver({ servers: current.dnsServers, timeoutMs: current.dnsTimeoutMs, tries: current.dnsTries });
    const deadline = queryDeadlineMs({ timeoutMs: current.dnsTimeoutMs, tries: current.dnsTries });
    const observe = (type: 'ptr' | 'a' | 'aaaa', outcome: string, seconds: number) => metrics.dnsQuery(type, outcome, seconds);
    return new LookupCache(directLookups(resolver, deadline, observe), cacheSettings(current), deps.clock, cacheStats);
  };
  let cache = makeCache(config);
  let currentPolicy = policyFor(config);
  /**
   * Decisions per message: Postfix sends the same `instance` for every recipient of one message,
   * so it is judged once, and the Authentication-Results header is prepended once. A connection
   * keeps its current message (RequestContext.state); this holds, by instance, the messages of
   * connections that ended, for when Postfix reconnects in the middle of a message (it closes
   * policy connections after smtpd_policy_service_max_idle / max_ttl, POSTFIX-FACTS 2).
   */
  const endedMessages = new LRUCache<string, MessageVerdict>({
    max: LIMITS.instanceCacheSize,
    ttl: LIMITS.instanceTtlMs,
    ...(deps.clock ? { perf: deps.clock } : {}),
  });
  /**
   * Clients by address as received, one KnownClient each: parsing IPv6 text is dear (a tenth of
   * a cached request), the reverse name and generic-name forms built from it are remembered per
   * client object, and so is its last judgement. Bounded first in, first out: a Map lookup is
   * all a known client costs (an LRU's bookkeeping touched five more places in memory per
   * request), and a busy client pushed out is parsed again and judged from the DNS cache.
   */
  const clients = new Map<string, KnownClient>();
  const parseClient = (text: string): KnownClient | undefined => {
    const known = clients.get(text);
    if (known !== undefined) return known;
    const ip = parseClientIp(text);
    if (!ip) return undefined;
    const client: KnownClient = {
      text: ip.text,
      family: ip.family,
      parsed: ip.parsed,
      skipNetworks: undefined,
      inSkipNetworks: false,
      ...NOT_JUDGED,
      judgedHelo: '',
      judgedConfig: undefined,
      judgedCache: undefined,
      judgedGeneration: -1,
      judgedUntil: Number.NEGATIVE_INFINITY,
      judgedAnswers: 0,
    };
    if (clients.size >= LIMITS.parsedClientsSize) {
      const oldest = clients.keys().next();
      if (!oldest.done) clients.delete(oldest.value);
    }
    clients.set(flatCopy(text), client);
    return client;
  };
  /** skip_networks membership, worked out once per client and list. */
  const inSkipNetworks = (client: KnownClient, networks: readonly Network[]): boolean => {
    if (client.skipNetworks !== networks) {
      client.inSkipNetworks = inNetworks(client, networks);
      client.skipNetworks = networks;
    }
    return client.inSkipNetworks;
  };
  const natWatch = { seen: 0, skipped: 0, lastWarning: Number.NEGATIVE_INFINITY };

  const noteNetworkSkip = (skipped: boolean): void => {
    natWatch.seen++;
    if (skipped) natWatch.skipped++;
    if (natWatch.seen < LIMITS.natWarningSample) return;
    const now = performance.now();
    if (natWatch.skipped * 2 > natWatch.seen && now - natWatch.lastWarning > 3_600_000) {
      natWatch.lastWarning = now;
      logger.warn(
        { skipped: natWatch.skipped, of: natWatch.seen },
        'most clients are in skip_networks: Postfix may sit behind NAT or a proxy, so client addresses cannot be judged',
      );
    }
    natWatch.seen = 0;
    natWatch.skipped = 0;
  };

  /** Judge a classified client: generic name, pass_names, the verdict, its reply and log fields. */
  const judge = (request: PolicyRequest, result: IprevResult, helo: HeloStatus, current: Config, policy: PolicySettings): Judgement => {
    // A generic-looking name only counts when every confirmed name looks generic.
    let generic: (GenericSignal & { name: string }) | undefined;
    if (result.result === 'pass') {
      const signals = result.confirmedNames.map((name) => ({ name, signal: genericSignal(name, request.client, current.genericLevel) }));
      const first = signals[0];
      if (first?.signal && signals.every((item) => item.signal)) generic = { name: first.name, ...first.signal };
    }
    const passName = matchesPassNames(result.confirmedNames, current.passNames);
    const verdict = decide(
      { result: result.result, temperrorStage: result.temperrorStage, generic: generic !== undefined, helo, passName: passName !== undefined },
      request.client,
      policy,
    );
    // RFC 8601 header on the first accepted request of the message (PREPEND goes on like DUNNO).
    const header =
      current.authresHeader && (verdict.action === 'dunno' || verdict.action === 'warn')
        ? authenticationResults(current.authservId, request.client, result)
        : undefined;
    const reply = header === undefined ? verdict.reply : `PREPEND ${header}`;
    const resultLabel = generic ? 'generic' : result.result;
    const { json } = outcomeFields({
      result: resultLabel,
      temperrorStage: result.temperrorStage,
      ptr: result.ptr,
      forward: result.forward,
      action: verdict.action,
      reply,
      extra: {
        helo,
        ...(generic ? { generic: { name: generic.name, reason: generic.reason, detail: generic.detail } } : {}),
        ...(passName ? { pass_name: passName } : {}),
        decided_by: verdict.decidedBy,
        ...(header ? { authres: header.slice('Authentication-Results: '.length) } : {}),
      },
    });
    return { verdict, action: verdict.action, reply, resultLabel, json };
  };

  /** The client's judgement from answers already cached, or undefined when DNS must be asked. */
  const judgeFromCache = (request: PolicyRequest<KnownClient>, current: Config, policy: PolicySettings): Judgement | undefined => {
    const lookups = cache;
    const client = request.client;
    if (
      client.judgedHelo === request.heloName &&
      client.judgedConfig === current &&
      client.judgedCache === lookups &&
      client.judgedGeneration === lookups.generation &&
      lookups.now() < client.judgedUntil
    ) {
      lookups.countHits(client.judgedAnswers);
      return client;
    }
    const known = lookups.known();
    const result = knownIprev(client, known.answers, current.maxPtrNames);
    if (!result) return undefined;
    let helo: HeloStatus | undefined;
    const heloKnown = heloWithoutLookup(request.heloName, client, result.confirmedNames);
    if (typeof heloKnown === 'string') helo = heloKnown;
    else if (!heloLookupUsed(policy)) helo = 'unchecked';
    else {
      const outcome = known.answers.addresses(heloKnown.lookup, client.family);
      if (outcome) helo = heloFromLookup(outcome, client);
    }
    if (!helo) return undefined;
    const answers = known.commit();
    const judgement = judge(request, result, helo, current, policy);
    // The record's Judgement fields become this judgement (the same properties: its shape stays).
    Object.assign(client, judgement);
    client.judgedHelo = flatCopy(request.heloName);
    client.judgedConfig = current;
    client.judgedCache = lookups;
    client.judgedGeneration = lookups.generation;
    client.judgedUntil = known.expiresAt();
    client.judgedAnswers = answers;
    return judgement;
  };

  /** The verdict already given to this message (instance) from this client, if any. */
  const messageVerdict = (request: PolicyRequest<KnownClient>, connection: RequestContext<MessageVerdict>, current: Config): Verdict | undefined => {
    const { instance } = request;
    if (instance === '') return undefined;
    const clientText = request.client.text;
    const open = connection.state;
    if (open !== undefined && open.instance === instance && open.clientText === clientText && open.config === current) return open.verdict;
    if (endedMessages.size === 0) return undefined;
    const ended = endedMessages.get(instance);
    if (ended === undefined || ended.clientText !== clientText || ended.config !== current) return undefined;
    // The message goes on on this connection now.
    connection.state = ended;
    return ended.verdict;
  };

  const handle = (attributes: PolicyAttributes, connection: RequestContext<MessageVerdict>): HandlerResult | Promise<HandlerResult> => {
    const started = performance.now();
    const parsed = parsePolicyRequest<KnownClient>(attributes, parseClient);
    if (!parsed.ok) return { trouble: parsed.problem };
    const request = parsed.request;
    const current = config;
    const policy = currentPolicy;

    const exemption = findExemption(request, current, inSkipNetworks);
    noteNetworkSkip(exemption === 'skip_network');
    if (exemption) {
      logDecision(connection.log, request, EXEMPTED[exemption], false, performance.now() - started);
      metrics.decision(current.check, 'skipped', 'dunno');
      return { reply: 'DUNNO' };
    }

    const remembered = messageVerdict(request, connection, current);
    if (remembered) {
      // One message is judged and logged once (SPEC "Protocol"); later recipients reuse it.
      // The header went with the first recipient's reply; the others get the plain verdict.
      connection.log.debug({ instance: request.instance, action: remembered.action }, 'decision reused for another recipient');
      return { reply: remembered.reply };
    }

    // Fast path: every answer already cached, nothing to wait for (and no promise either).
    const judgement = judgeFromCache(request, current, policy);
    if (judgement) return answer(request, current, connection, judgement, true, started);
    if (heapGuard.shedding()) {
      heapGuard.count();
      return answer(request, current, connection, shedJudgement(request, current, policy, 'EHEAPFULL'), false, started);
    }
    if (waitingForDns >= LIMITS.maxWaitingRequests) {
      noteBusy();
      return answer(request, current, connection, shedJudgement(request, current, policy, 'EBUSY'), false, started);
    }
    const waiting = detachedRequest(request);
    waitingForDns++;
    return pacedStart(() => judgeWithLookups(waiting, current, policy))
      .finally(() => waitingForDns--)
      .then(({ judgement, cached }) => answer(waiting, current, connection, judgement, cached, started));
  };

  /**
   * Requests waiting for DNS, across all connections. The per-connection bounds (64 pipelined ×
   * max_connections) admit far more than the heap holds (~5.7 KB each, plus their queries):
   * past LIMITS.maxWaitingRequests a new client is answered at once per temperror_action, as
   * it would be when its lookups timed out, instead of the daemon dying of "heap limit".
   */
  let waitingForDns = 0;
  const busy = { shed: 0, lastWarning: Number.NEGATIVE_INFINITY };
  const noteBusy = (): void => {
    busy.shed++;
    const now = performance.now();
    if (now - busy.lastWarning < 60_000) return;
    busy.lastWarning = now;
    logger.warn(
      { waiting: waitingForDns, limit: LIMITS.maxWaitingRequests, shed: busy.shed },
      'too many requests waiting for DNS: new clients are answered per temperror_action until some are answered',
    );
  };

  const heapGuard = createHeapGuard((shedding, reading, shedMeanwhile) => {
    const heap = { heap_used_mb: Math.round(reading.used / 2 ** 20), heap_limit_mb: Math.round(reading.limit / 2 ** 20) };
    if (shedding) {
      logger.warn(heap, 'heap nearly full: new uncached clients are answered per temperror_action without DNS until it frees up');
    } else logger.info({ ...heap, shed: shedMeanwhile }, 'heap freed up: new clients are looked up again');
  }, deps.heapReading);
  /**
   * A new client turned away while the heap is nearly full (EHEAPFULL) or too many requests
   * wait for DNS (EBUSY): a temperror of the PTR stage with that code (no query was sent), so
   * temperror_action decides and the log says why.
   */
  const shedJudgement = (request: PolicyRequest<KnownClient>, current: Config, policy: PolicySettings, code: 'EHEAPFULL' | 'EBUSY'): Judgement => {
    const result: IprevResult = {
      result: 'temperror',
      temperrorStage: 'ptr',
      reverseName: reverseName(request.client),
      ptr: { outcome: 'temporary', code, names: [], ignored: [] },
      forward: [],
      confirmedNames: [],
    };
    const helo = heloWithoutLookup(request.heloName, request.client, []);
    return judge(request, result, typeof helo === 'string' ? helo : 'unchecked', current, policy);
  };

  /** Ask DNS (through the cache) for what is missing, then judge. */
  const judgeWithLookups = async (request: PolicyRequest<KnownClient>, current: Config, policy: PolicySettings): Promise<{ judgement: Judgement; cached: boolean }> => {
    const lookups = cache.forRequest();
    const bounded = withOverallDeadline(lookups.dns, queryDeadlineMs({ timeoutMs: current.dnsTimeoutMs, tries: current.dnsTries }));
    const heloFor = startHeloAssessment(request.heloName, request.client, bounded.dns, heloLookupUsed(policy));
    const result = await lookupIprev(request.client, bounded.dns, current.maxPtrNames);
    const helo = await heloFor(result.confirmedNames);
    bounded.dispose();
    return { judgement: judge(request, result, helo, current, policy), cached: lookups.allCached() };
  };

  /** Remember the verdict for the message's other recipients, count it, log it, reply. */
  const answer = (
    request: PolicyRequest,
    current: Config,
    connection: RequestContext<MessageVerdict>,
    judgement: Judgement,
    cached: boolean,
    started: number,
  ): HandlerResult => {
    const log = connection.log;
    if (request.instance !== '') {
      const message: MessageVerdict = {
        instance: detachedCopy(request.instance),
        clientText: request.client.text,
        verdict: judgement.verdict,
        config: current,
      };
      connection.state = message;
      // Answered after the connection ended (its DNS took a while): keep it for the reconnect.
      if (connection.ended) endedMessages.set(message.instance, message);
    }
    metrics.decision(current.check, judgement.resultLabel, judgement.action);
    logDecision(log, request, judgement, cached, performance.now() - started);
    return { reply: judgement.reply };
  };

  // Ready means ready: the metrics endpoint listens before the policy port accepts anything, so
  // a scrape right after start finds it and no decision goes uncounted; `started` follows both.
  let policyServer: PolicyServer | undefined;
  if (config.metricsListen) {
    metrics = await startMetrics(
      config.metricsListen,
      {
        server: () => policyServer?.stats ?? NO_CONNECTIONS_YET,
        cache: () => cacheStats,
        shed: () => ({ heap: heapGuard.shed, waiting: busy.shed }),
        waiting: () => waitingForDns,
        droppedLogLines: () => droppedLogLines(logger),
      },
      logger,
    );
  }
  let server: PolicyServer;
  try {
    server = await (deps.startServer ?? startPolicyServer)({
      listen: config.listen,
      listenMode: config.listenMode,
      listenAllow: config.listenAllow,
      maxConnections: config.maxConnections,
      logger,
      handle,
      connectionEnded: (connection) => {
        const message = connection.state;
        if (message !== undefined && message.config === config) endedMessages.set(message.instance, message);
      },
      ...(deps.idleTimeoutMs !== undefined ? { idleTimeoutMs: deps.idleTimeoutMs } : {}),
      ...(deps.requestReadTimeoutMs !== undefined ? { requestReadTimeoutMs: deps.requestReadTimeoutMs } : {}),
    });
  } catch (error) {
    // The policy port could not be had (in use, no permission): the metrics port goes too.
    await metrics.close();
    throw error;
  }
  policyServer = server;
  logger.info(
    { source: config.source, listen: server.address, config: Object.fromEntries(config.effective) },
    'started',
  );

  return {
    address: server.address,
    get metricsAddress() {
      return metrics.address;
    },
    port: server.port,
    serverStats: server.stats,
    get cache() {
      return cache;
    },
    reload(next: Config) {
      const previous = config;
      if (!sameJson(previous.listen, next.listen) || previous.listenMode !== next.listenMode || !sameJson(previous.metricsListen, next.metricsListen)) {
        logger.warn({ listen: Object.fromEntries(next.effective).listen }, 'listen and metrics_listen changes take effect on restart');
      }
      const dnsChanged =
        !sameJson(previous.dnsServers, next.dnsServers) ||
        previous.dnsTimeoutMs !== next.dnsTimeoutMs ||
        previous.dnsTries !== next.dnsTries;
      if (dnsChanged || !sameJson(cacheSettings(previous), cacheSettings(next))) cache = makeCache(next);
      endedMessages.clear();
      logger.level = next.logLevel;
      server.updateLimits({ listenAllow: next.listenAllow, maxConnections: next.maxConnections });
      config = next;
      currentPolicy = policyFor(next);
      logger.info({ source: next.source, config: Object.fromEntries(next.effective) }, 'reloaded');
    },
    async close() {
      await server.close();
      await metrics.close();
      heapGuard.close();
      logger.info('stopped');
    },
  };
}
