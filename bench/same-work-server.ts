/**
 * Baseline (d), for the cold workloads and the hot one at C=100: the floor server
 * (bench/floor-server.ts), or on the hot workload the null server's part of it, plus the least of
 * the daemon's own work that no reverse-DNS policy service can skip, each done the plain way with
 * the project's own libraries: the request validated (the daemon's parsePolicyRequest), clients'
 * parsed addresses remembered (4,096, first in first out, as the daemon's), PTR and forward answers
 * kept in a 100,000-entry lru-cache for their TTL (the daemon's default cache_size), the forward
 * confirmation, and one pino JSON line per decision with the request's fields and the answers it
 * rests on. Not done here, though the SPEC asks it of the daemon: PTR names validated, normalised
 * and de-duplicated, forward answers made canonical, cache_max_ttl, in-flight queries shared; nor
 * the deadline, admission, pacing, metrics, HELO check, generic-name signal or message memory.
 * Usage: same-work-server.ts PORT RESOLVER (SAME_WORK_LOG=off: no decision line).
 */
import { Resolver } from 'node:dns';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import pino from 'pino';
import { parseClientIp, reverseName, type ClientIp } from '../src/util/ip.js';
import { parsePolicyRequest, type PolicyRequest } from '../src/protocol/request.js';
import { FifoMap } from '../src/util/fifo-map.js';
import { listenForPolicy } from './lib/policy-listener.js';

const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([process.argv[3] ?? '127.0.0.1:53']);
// pino's own advice for throughput (its docs, "Asynchronous logging"): buffer 4 KiB, write async.
// SAME_WORK_LOG=off leaves the line out, to read what the other features cost on their own.
const log = pino({ level: process.env.SAME_WORK_LOG === 'off' ? 'silent' : 'info' }, pino.destination({ dest: 1, minLength: 4096, sync: false }));

type Answer = { records: string[]; expiresAt: number };
const answers = new LRUCache<string, Answer>({ max: 100_000 });
const clients = new FifoMap<ClientIp>(4096);

function knownClient(text: string): ClientIp | undefined {
  const known = clients.get(text);
  if (known) return known;
  const ip = parseClientIp(text);
  if (ip) clients.set(text, ip);
  return ip;
}

function cached(key: string): string[] | undefined {
  const answer = answers.get(key);
  return answer && answer.expiresAt > performance.now() ? answer.records : undefined;
}

function keep(key: string, records: string[], ttlSeconds: number): void {
  answers.set(key, { records, expiresAt: performance.now() + ttlSeconds * 1000 });
}

/** A failed query is kept too, as the daemon's negative_ttl (5 min) and temperror_ttl (30 s) keep it. */
function failureTtl(error: NodeJS.ErrnoException): number {
  return error.code === 'ENOTFOUND' || error.code === 'ENODATA' ? 300 : 30;
}

/** The PTR names, from the cache or DNS (an answer kept 15 minutes, the daemon's ptr_ttl). */
function ptrNames(ip: ClientIp, done: (names: string[], cached: boolean) => void): void {
  const key = reverseName(ip);
  const known = cached(key);
  if (known) return done(known, true);
  resolver.resolvePtr(key, (error, names) => {
    const found = error ? [] : names;
    keep(key, found, error ? failureTtl(error) : 900);
    done(found, false);
  });
}

/** One name's addresses of the client's family, from the cache or DNS (kept for their TTL). */
function addresses(name: string, family: 4 | 6, done: (addresses: string[]) => void): void {
  const key = `${family === 4 ? 'a' : 'aaaa'} ${name}`;
  const known = cached(key);
  if (known) return done(known);
  const answered = (error: NodeJS.ErrnoException | null, records: Array<{ address: string; ttl: number }>) => {
    if (error) {
      keep(key, [], failureTtl(error));
      return done([]);
    }
    const found = records.map((record) => record.address);
    keep(key, found, Math.min(...records.map((record) => record.ttl)));
    done(found);
  };
  if (family === 4) resolver.resolve4(name, { ttl: true }, answered);
  else resolver.resolve6(name, { ttl: true }, answered);
}

function decide(request: PolicyRequest, started: number, reply: () => void): void {
  const ip = request.client;
  ptrNames(ip, (names, ptrCached) => {
    const checked = names.slice(0, 10);
    const forward: Array<{ name: string; addresses: string[]; matched: boolean }> = [];
    const finish = () => {
      const result = forward.some((check) => check.matched) ? 'pass' : 'fail';
      // SAME_WORK_LOG=off: not even the line's object is built.
      if (log.isLevelEnabled('info')) {
        const line = {
          client_address: request.clientAddress,
          helo_name: request.heloName,
          instance: request.instance,
          queue_id: request.queueId,
          protocol_state: request.protocolState,
          recipient: request.recipient,
          authenticated: request.saslUsername !== '',
          result,
          ptr: { names },
          forward,
          action: 'dunno',
          reply: 'DUNNO',
          cached: ptrCached,
          duration_ms: performance.now() - started,
        };
        log.info(line, 'decision');
      }
      reply();
    };
    if (checked.length === 0) return finish();
    let waiting = checked.length;
    for (const name of checked) {
      addresses(name, ip.family, (found) => {
        // c-ares prints addresses canonically, as the client's text is.
        forward.push({ name, addresses: found, matched: found.includes(ip.text) });
        if (--waiting === 0) finish();
      });
    }
  });
}

listenForPolicy(Number(process.argv[2]), (_clientAddress, reply, attributes) => {
  const started = performance.now();
  const parsed = parsePolicyRequest(attributes, knownClient);
  if (!parsed.ok) return reply();
  decide(parsed.request, started, reply);
});
