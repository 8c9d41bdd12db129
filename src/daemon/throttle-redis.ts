/**
 * The connection to a shared throttle store, Redis or Valkey (issue 27), through node-redis 5
 * (`redis`; engines >= 18.19.0, the runtime floor). It runs the one step (throttle-script.ts) by
 * its SHA and reloads the script when the server answers NOSCRIPT (a restart or SCRIPT FLUSH
 * empties the script cache: redis.io/docs/latest/commands/evalsha). Deadlines, fallback and the
 * breaker are the store's (throttle-store.ts); this file only talks to the server.
 */
import { readFileSync, statSync } from 'node:fs';
import type { createClient } from '@redis/client';
import { LIMITS } from '../config/limits.js';
import type { ThrottleStoreTarget } from '../config/throttle-store-url.js';
import { THROTTLE_SCRIPT, THROTTLE_SCRIPT_SHA } from './throttle-script.js';

type RedisClient = ReturnType<typeof createClient<{}, {}, {}, 2, {}>>;

export interface RedisLinkEvents {
  /** The connection is ready for commands (first connect or a reconnect). */
  ready(): void;
  /** The connection failed or dropped (node-redis reconnects by itself); `ready` says whether it still is. */
  error(message: string, ready: boolean): void;
  /** A connection attempt starts (node-redis loaded): the time it may take to become ready runs from here. */
  connecting?(): void;
}

export interface RedisLinkOptions {
  readonly target: Extract<ThrottleStoreTarget, { kind: 'redis' | 'socket' }>;
  readonly password?: string | undefined;
  readonly connectTimeoutMs?: number;
  readonly events: RedisLinkEvents;
}

/** The password in a file: its first line; a problem in words when it cannot be read or is empty. */
export function readPasswordFile(path: string): { password: string } | { problem: string } {
  try {
    const size = statSync(path).size;
    if (size > LIMITS.throttleStorePasswordFileMaxBytes) return { problem: `the password file ${path} is over ${LIMITS.throttleStorePasswordFileMaxBytes} bytes` };
    const password = (readFileSync(path, 'utf8').split(/\r?\n/)[0] ?? '').trim();
    if (password === '') return { problem: `the password file ${path} is empty` };
    return { password };
  } catch (error) {
    return { problem: `cannot read the password file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
}

/** An error's text for a log line: the server's own words for an error reply (WRONGPASS, OOM, …). */
export function describeStoreError(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.length > LIMITS.maxLogFieldChars ? text.slice(0, LIMITS.maxLogFieldChars) : text;
}

function isNoScript(error: unknown): boolean {
  // An error reply carries the server's own words (node-redis' ErrorReply).
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * node-redis, loaded the first time a shared store is used: a daemon that throttles in memory,
 * or not at all, neither evaluates it at start-up nor pays for it (about 25 ms of start-up when
 * it was loaded with the bundle).
 */
let redisClientModule: Promise<typeof import('@redis/client')> | undefined;
const loadRedisClient = (): Promise<typeof import('@redis/client')> => (redisClientModule ??= import('@redis/client'));

export class RedisLink {
  /** Undefined until node-redis is loaded (a step meanwhile fails, and memory answers it). */
  private client: RedisClient | undefined;
  private closed = false;
  /** SCRIPT LOADs sent (the first, and one after each NOSCRIPT). */
  scriptLoads = 0;

  constructor(private readonly options: RedisLinkOptions) {
    void this.connect();
  }

  get ready(): boolean {
    return this.client?.isReady === true;
  }

  /** EVALSHA the step; on NOSCRIPT load the script and run it once more. The caller bounds the time. */
  async step(key: string, args: string[]): Promise<unknown> {
    const client = this.client;
    if (client === undefined) throw new Error('the shared store is not connected yet');
    try {
      return await client.evalSha(THROTTLE_SCRIPT_SHA, { keys: [key], arguments: args });
    } catch (error) {
      if (!isNoScript(error)) throw error;
      await this.loadOn(client);
      return await client.evalSha(THROTTLE_SCRIPT_SHA, { keys: [key], arguments: args });
    }
  }

  /** SCRIPT LOAD: the probe run when a connection becomes ready (the script cache may be empty). */
  async loadScript(): Promise<void> {
    if (this.client === undefined) throw new Error('the shared store is not connected yet');
    await this.loadOn(this.client);
  }

  /**
   * A new connection in place of the current one: after steps timed out, the old one may be
   * stuck behind a paused server or a dead path that TCP takes minutes to notice. Its pending
   * commands fail (their callers already answered from memory).
   */
  reset(): void {
    if (this.closed) return;
    const old = this.client;
    this.client = undefined;
    old?.destroy();
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client?.destroy();
  }

  private async loadOn(client: RedisClient): Promise<void> {
    this.scriptLoads++;
    const sha = await client.scriptLoad(THROTTLE_SCRIPT);
    if (sha !== THROTTLE_SCRIPT_SHA) throw new Error(`SCRIPT LOAD answered ${String(sha).slice(0, 64)}, not the script's SHA1`);
  }

  private async connect(): Promise<void> {
    const { createClient } = await loadRedisClient();
    if (this.closed || this.client !== undefined) return;
    const { target, password } = this.options;
    const socketCommon = {
      connectTimeout: this.options.connectTimeoutMs ?? LIMITS.throttleStoreConnectTimeoutMs,
      // Reconnect soon after a restart, then back off; never give up (the breaker keeps mail flowing meanwhile).
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), LIMITS.throttleStoreReconnectMaxMs),
    };
    const client = createClient({
      ...(target.kind === 'redis' ? { url: target.url, socket: socketCommon } : { socket: { ...socketCommon, path: target.path, tls: false as const } }),
      ...(password === undefined ? {} : { password }),
      // A step while disconnected fails at once instead of waiting for a reconnect that may never come.
      disableOfflineQueue: true,
      commandsQueueMaxLength: LIMITS.throttleStoreQueueMax,
    });
    client.on('ready', () => {
      if (client === this.client && !this.closed) this.options.events.ready();
    });
    // Without an 'error' listener an EventEmitter throws: a dead Redis would take the daemon down.
    client.on('error', (error: unknown) => {
      if (client === this.client && !this.closed) this.options.events.error(describeStoreError(error), client.isReady);
    });
    this.client = client;
    this.options.events.connecting?.();
    client.connect().catch(() => undefined);
  }
}
