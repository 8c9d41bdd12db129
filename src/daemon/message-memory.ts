/**
 * The per-message memory: Postfix sends the same `instance` for every recipient of one message,
 * so a message is judged and logged once (SPEC "Protocol") and its later recipients get the same
 * verdict. Postfix sends every request of one message from one smtpd process over that process's
 * one connection to this service (POSTFIX-FACTS 2), so the connection itself remembers its
 * current message; this keeps, by instance, the messages of connections that ended, for when
 * Postfix reconnects in the middle of a message (it closes policy connections after
 * smtpd_policy_service_max_idle / max_ttl, POSTFIX-FACTS 2).
 */
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../dns/cache.js';
import type { Config } from '../config/config.js';
import { LIMITS } from '../config/limits.js';
import type { Verdict } from '../judge/policy.js';
import type { PolicyRequest } from '../protocol/request.js';
import type { RequestContext } from './server.js';
import { detachedCopy } from '../util/text.js';

/** A message judged on a connection. */
export interface MessageVerdict {
  /** Postfix's `instance` (a copy: it outlives the request). */
  readonly instance: string;
  /** The client's canonical address: `instance` only counts for the same client. */
  readonly clientText: string;
  readonly verdict: Verdict;
  /** The configuration it was judged under: a reload judges the rest of the message anew. */
  readonly config: Config;
}

export class MessageMemory {
  /** By instance, with when it is forgotten (the expiry is ours, on the injectable clock, as in cache.ts). */
  private readonly ended: LRUCache<string, { message: MessageVerdict; expiresAt: number }>;
  private readonly clock: Clock;

  constructor(clock?: Clock) {
    this.clock = clock ?? performance;
    this.ended = new LRUCache<string, { message: MessageVerdict; expiresAt: number }>({ max: LIMITS.instanceCacheSize });
  }

  private keep(message: MessageVerdict): void {
    this.ended.set(message.instance, { message, expiresAt: this.clock.now() + LIMITS.instanceTtlMs });
  }

  private endedMessage(instance: string): MessageVerdict | undefined {
    const entry = this.ended.get(instance);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.clock.now()) return entry.message;
    this.ended.delete(instance);
    return undefined;
  }

  /** The verdict already given to this message (instance) from this client, if any. */
  recall(request: PolicyRequest, connection: RequestContext<MessageVerdict>, config: Config): Verdict | undefined {
    const { instance } = request;
    if (instance === '') return undefined;
    const clientText = request.client.text;
    const open = connection.state;
    if (open !== undefined && open.instance === instance && open.clientText === clientText && open.config === config) return open.verdict;
    if (this.ended.size === 0) return undefined;
    const ended = this.endedMessage(instance);
    if (ended === undefined || ended.clientText !== clientText || ended.config !== config) return undefined;
    // The message goes on on this connection now.
    connection.state = ended;
    return ended.verdict;
  }

  /** Remember a message's verdict for its other recipients. */
  remember(request: PolicyRequest, connection: RequestContext<MessageVerdict>, verdict: Verdict, config: Config): void {
    if (request.instance === '') return;
    const message: MessageVerdict = { instance: detachedCopy(request.instance), clientText: request.client.text, verdict, config };
    connection.state = message;
    // Answered after the connection ended (its DNS took a while): keep it for the reconnect.
    if (connection.ended) this.keep(message);
  }

  /** A connection ended: its current message, if judged under `config`, waits for a reconnect. */
  connectionEnded(connection: RequestContext<MessageVerdict>, config: Config): void {
    const message = connection.state;
    if (message !== undefined && message.config === config) this.keep(message);
  }

  /** Forget every ended connection's message (a reload). */
  clear(): void {
    this.ended.clear();
  }
}
