/**
 * Hard bounds that no configuration may exceed. One home for every limit so the
 * protocol, server and lookups never carry magic numbers of their own.
 */
export const LIMITS = {
  /** SPEC "Protocol": a line over 8 KiB is trouble. */
  maxLineBytes: 8 * 1024,
  /** SPEC "Protocol": a request over 64 KiB is trouble. */
  maxRequestBytes: 64 * 1024,
  /**
   * A request waiting for DNS keeps the text its values were cut from when that text is at most
   * this long (a Postfix request alone: 0.5–1.5 KB), and copies its values otherwise
   * (src/protocol/request.ts keptWhileWaiting): maxWaitingRequests waiting keep at most 8 MB of
   * read text alive, less the copies they no longer make (~0.5 KB each).
   */
  maxPinnedRequestChars: 2 * 1024,
  /**
   * A request that starts but does not finish within this time is trouble (slowloris).
   * Postfix writes a whole request at once (POSTFIX-FACTS 2), so this never fires for it.
   */
  requestReadTimeoutMs: 30_000,
  /**
   * Idle connections close after this. It is longer than Postfix's
   * smtpd_policy_service_max_idle (300 s) so Postfix, not the daemon, closes idle
   * connections (POSTFIX-FACTS 2: a server-side close delays the next request by retry_delay).
   */
  idleTimeoutMs: 330_000,
  /** Requests pipelined on one connection before reading pauses (Postfix sends one at a time). */
  maxPipelinedRequests: 64,
  /**
   * Attribute lines in one request. Postfix sends about 35 (POSTFIX-FACTS 5; 3.8 added two); a
   * request with more is trouble. Each line costs a slice and a comparison when the request is
   * read, so 64 KiB of `k=` lines (~11,000) is no longer a way to make the daemon work or hold more.
   */
  maxAttributesPerRequest: 128,
  /**
   * Raw bytes held for requests begun but not finished (their empty line has not arrived) and for
   * requests waiting their connection's turn, all connections together. One connection holds at
   * most maxRequestBytes + maxDeferredBytesPerConnection; Postfix's requests arrive whole, one at a
   * time, and are never held. Past this, the connection holding the most is closed without reply.
   */
  maxHeldRequestBytesTotal: 8 * 1024 * 1024,
  /**
   * Requests of one connection waiting for DNS at once; further requests on that connection wait
   * their turn (maxDeferredBytesPerConnection) until one is answered. Postfix sends one request at
   * a time per connection (POSTFIX-FACTS 2), so only a pipelining peer ever waits here.
   */
  maxWaitingPerConnection: 4,
  /**
   * Bytes of one connection's requests read past maxWaitingPerConnection and kept (as copies of
   * their own lines) until their turn; reading pauses past it. Read, they are answered at their
   * deadline from arrival even if their turn comes later; counted in maxHeldRequestBytesTotal.
   */
  maxDeferredBytesPerConnection: 64 * 1024,
  /**
   * Share of maxWaitingRequests a connection that already has a request waiting may still use;
   * the rest is kept for connections with none waiting (every Postfix connection), so many
   * pipelining connections cannot take the whole budget from a new SMTP session.
   */
  waitingSharedFraction: 0.75,
  /**
   * DNS queries in flight (sent, not yet answered or timed out), all requests together: what a
   * waiting request costs besides itself (a query, its timer, its outcome). A request whose PTR
   * names would fan out past this gets a forward temperror (`EBUSY`) instead of more queries; a
   * new client, past it, is answered per temperror_action at once.
   */
  maxQueriesInFlight: 6_144,
  /** How long to wait for an answer when probing whether another process listens on the unix socket's path. */
  socketProbeTimeoutMs: 1_000,
  /** Unsent reply bytes on one connection before reading pauses (a peer that never reads). */
  maxPendingReplyBytes: 256 * 1024,
  /** Upper bound for max_ptr_names: each name costs one forward query (amplification bound). */
  maxPtrNamesCeiling: 50,
  /**
   * Unusable PTR names (invalid, numeric, duplicate, over max_ptr_names) kept per answer as
   * examples for the log and `check`; the rest are only counted, by reason.
   */
  maxIgnoredExamples: 4,
  /**
   * Addresses kept of one A/AAAA answer (a 64 KB answer holds ~4,000 A records): a mail host has
   * a handful, a big round-robin set a few hundred; only these are compared with the client, the
   * rest are counted (`addresses_omitted`). At most ~50 KB per cache entry, and the cache is
   * bounded in bytes too.
   */
  maxAddressesKept: 1024,
  /**
   * Requests waiting for DNS across all connections; past it new clients are answered per
   * temperror_action at once. ~5.7 KB each with their queries (bench:handler --cold), more in
   * RSS: 6,000 waiting peaked at 146–149 MB against the unit's 150 MB budget, 4,096 leaves room
   * (test/integration/waiting-bound.test.ts). A request's lookups end within dns_timeout × dns_tries, so
   * 4,096 waiting at a 1 s deadline still admits ~4,000 new clients a second.
   */
  maxWaitingRequests: 4_096,
  /** Upper bound for max_connections. */
  maxConnectionsCeiling: 1_000_000,
  /** Upper bound for cache_size. */
  maxCacheSizeCeiling: 10_000_000,
  /**
   * Per-message decisions of connections that ended, for a message that goes on over a new
   * connection (keyed by instance); a message's recipients arrive within minutes.
   */
  instanceCacheSize: 20_000,
  instanceTtlMs: 30 * 60_000,
  /** Longest string from a peer or from DNS copied into one log field. */
  maxLogFieldChars: 256,
  /**
   * A decision line's outcome members (result, PTR names, forward answers, action, reply) are
   * cut to this many UTF-8 bytes; with the request fields and pino's own the line stays under
   * maxDecisionLineBytes, so one hostile client cannot crowd others out of the log.
   */
  maxOutcomeJsonBytes: 2_560,
  maxDecisionLineBytes: 4_096,
  /** Request fields of a line that would pass maxDecisionLineBytes are cut to this. */
  maxCutRequestFieldChars: 40,
  /**
   * A c-ares channel serves at most this many queries or this long before a new one replaces it,
   * so c-ares' own query cache (on in Debian 13's system c-ares, src/dns/resolver.ts) holds at most a few
   * hundred answers (~13 MB of 64 KB hostile answers) and none for longer than a minute.
   */
  resolverChannelQueries: 32,
  resolverChannelMs: 60_000,
  /**
   * Answers that c-ares' own query cache may hold in channels V8 has not collected yet (an
   * estimate from the answers received, src/dns/channel-memory.ts): past it, a full collection
   * is asked for, at most every resolverForcedGcMs. Ordinary answers (~100 bytes) never reach it;
   * a hostile zone's 64 KB answers do, after a few hundred queries.
   */
  resolverCachedAnswerBytes: 16 * 1024 * 1024,
  resolverForcedGcMs: 500,
  /** Extra time allowed on top of dns_timeout × dns_tries before a lookup is declared timed out. */
  dnsDeadlineMarginMs: 250,
  /**
   * How often queries sent by callback (the cold path) are checked against that deadline: one
   * timer for all of them instead of one per query, so a query past it ends up to this late.
   */
  querySweepMs: 100,
  /** Longest reply_hint accepted (the whole reply must stay well under Postfix's line limits). */
  maxReplyHintChars: 200,
  /**
   * Heap the daemon needs: a base for code, connections and buffers, plus each cached lookup
   * (measured: 100,000 entries take 26 MB; 400 bytes each leaves room for long PTR sets). The
   * shipped launchers cap V8's heap (--max-old-space-size) so RSS stays near the live data; a
   * cache_size the cap cannot hold is refused at start and on reload instead of crashing later.
   */
  heapBaseBytes: 64 * 1024 * 1024,
  heapBytesPerCacheEntry: 400,
  /**
   * Client records remembered, first in first out: the parsed address, its skip_networks answer
   * and last judgement (under 1 KB each with their derived names; the hot set of senders).
   */
  parsedClientsSize: 4096,
  /**
   * `report` / `replay` read a decision line's `time` only as the daemon writes it (pino ISO
   * milliseconds) and only from 2000-01-01 to a day past the reader's clock (clock skew between
   * hosts): anything else is a forged or garbled line, counted as `bad_time`, never a timeline
   * of thousands of years.
   */
  logTimeEarliestMs: Date.UTC(2000, 0, 1),
  logTimeAheadMs: 86_400_000,
  /**
   * Longest `duration_ms` read back: the daemon answers within seconds (Postfix gives up after
   * 100 s); a longer, negative or infinite one (`1e400`) is counted as `bad_duration`.
   */
  logDurationMaxMs: 3_600_000,
  /** Short codes read back (resolver error codes, skip reasons), cut to this. */
  maxLogCodeChars: 32,
  /**
   * Distinct resolver error codes / skip reasons `report` counts apart; past it, under `other`
   * (a forged log could invent a new one per line).
   */
  maxReportCodes: 64,
  /**
   * What `replay` keeps of each message for its later recipients (the request strings and the
   * confirmed names, cut as above), in bytes across all messages: past it the oldest go first,
   * and a later recipient of one is `message_not_in_input`. Daemon lines take ~0.5 KB each, so
   * the instanceCacheSize messages fit; lines of maximal names do not crowd the heap out.
   */
  replayMessageBytes: 16 * 1024 * 1024,
  /**
   * `check HOST` checks at most this many of a host's addresses (half for each family, what one
   * does not use going to the other) and says how many it left out: a name with 1,024 addresses
   * of 50 PTR names each would otherwise cost ~52,000 queries (test/integration/check-host-bounds.test.ts).
   */
  maxCheckHostAddresses: 8,
  /** Addresses `check` prints of one forward answer (the matching one always among them); the rest are counted. */
  maxCheckShownAddresses: 16,
  /** Decisions sampled before the "most clients are skipped: NAT?" warning is considered. */
  natWarningSample: 200,
  /**
   * Open connections to the metrics endpoint. A scraper keeps one, a health check opens one now
   * and then: 32 is room for several; at the cap the longest-open idle one is closed (a scraper
   * reconnects), so a local peer holding many cannot lock Prometheus out, nor take more than this
   * many of the daemon's file descriptors (counted in the budget checked at start, src/cli/cli.ts).
   */
  maxMetricsConnections: 32,
  /** A metrics request's headers must arrive within this, the whole request within metricsRequestTimeoutMs. */
  metricsHeadersTimeoutMs: 5_000,
  metricsRequestTimeoutMs: 10_000,
  /** An idle keep-alive metrics connection closes after this (Prometheus scrapes every 15 s or so and reconnects). */
  metricsKeepAliveTimeoutMs: 5_000,
  /** A metrics connection with no traffic at all closes after this, whatever state it is in. */
  metricsIdleTimeoutMs: 15_000,
  /** How often node checks metrics connections against the header and request timeouts (its default is 30 s). */
  metricsTimeoutCheckMs: 1_000,
  /**
   * /healthz sends one request to the policy listener and waits this long for its answer; a
   * Prometheus scrape (10 s) and Docker's HEALTHCHECK (10 s) wait longer. Concurrent health
   * checks share one probe, so at most one probe connection is open at any time.
   */
  healthProbeTimeoutMs: 2_000,
  /**
   * Descriptors the daemon needs besides its connections: stdio, the listeners, DNS sockets, the
   * config file, the health probe. The start-up check wants max_connections + the metrics cap +
   * this many.
   */
  fileDescriptorReserve: 64,
  /**
   * Warnings and errors logged per kind (message) per minute; the rest of the minute's are only
   * counted, and one line gives the counts when the minute ends. Decision lines never count.
   */
  warningsPerKindPerWindow: 5,
  warningWindowMs: 60_000,
  /** Kinds counted apart in one window; past it they share one count ("other"). */
  warningKindsTracked: 64,
  /**
   * Networks the in-memory throttle store keeps (issue 27), least recently used first out; an
   * evicted network whose budget was spent gets a fresh one (counted). Measured on node 20
   * (test/daemon/throttle-store.test.ts, a million distinct networks, half IPv4 /24, half IPv6 /64):
   * ~120 bytes a key, so the cap costs ~14 MB of heap at most, however many networks send.
   */
  throttleMemoryKeys: 100_000,
  heapBytesPerThrottleKey: 144,
  /** Expired keys dropped from the cold end of the in-memory store per decision (bounded work per request). */
  throttleSweepPerTake: 2,
  /**
   * Default deadline of one shared-store step (issue 27: a slow Redis never delays a reply past
   * ≤ 50 ms); past it the in-memory store answers. throttleStoreDeadlineCeilingMs bounds the setting.
   */
  throttleStoreDeadlineMs: 50,
  throttleStoreDeadlineCeilingMs: 1_000,
  /** Consecutive failed shared-store steps that open the circuit breaker (then memory answers alone). */
  throttleBreakerFailures: 3,
  /** How long an open breaker waits before one step probes the shared store again. */
  throttleBreakerCooldownMs: 5_000,
  /** Connecting to the shared store gives up after this; reconnects back off up to throttleStoreReconnectMaxMs. */
  throttleStoreConnectTimeoutMs: 1_000,
  throttleStoreReconnectMaxMs: 2_000,
  /**
   * Commands queued in the Redis client, sent or not: a paused Redis (SIGSTOP, a long DEBUG SLEEP)
   * answers nothing, and past this a step fails at once instead of holding memory.
   */
  throttleStoreQueueMax: 256,
  /** Longest password file read for the shared store (a Redis password is a line, not a document). */
  throttleStorePasswordFileMaxBytes: 4_096,
} as const;
