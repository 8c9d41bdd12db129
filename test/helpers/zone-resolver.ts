/**
 * A DnsResolver built from a zone table, for unit tests: it answers like node:dns (NXDOMAIN is
 * ENOTFOUND, no data is ENODATA, and a name can be made to fail with any error code), and it
 * records every query so tests can count them.
 */
import type { DnsResolver } from '../../src/dns/resolver.js';

export type Answer = string[] | { error: string } | { delayMs: number; answer: Answer };

export interface ZoneTable {
  ptr?: Record<string, Answer>;
  a?: Record<string, Answer>;
  aaaa?: Record<string, Answer>;
}

export interface ZoneResolver extends DnsResolver {
  queries: string[];
}

function dnsError(code: string): Error {
  return Object.assign(new Error(`query failed: ${code}`), { code });
}

export function zoneResolver(table: ZoneTable, ttl = 300): ZoneResolver {
  const queries: string[] = [];
  const answer = async (type: 'ptr' | 'a' | 'aaaa', name: string): Promise<string[]> => {
    queries.push(`${type.toUpperCase()} ${name}`);
    const lower = name.toLowerCase();
    let entry: Answer | undefined = table[type]?.[lower];
    while (entry && !Array.isArray(entry) && 'delayMs' in entry) {
      const { delayMs, answer: inner }: { delayMs: number; answer: Answer } = entry;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      entry = inner;
    }
    if (entry === undefined) {
      // NXDOMAIN unless some other type exists at that name (then it is no data).
      const exists = (['ptr', 'a', 'aaaa'] as const).some((other) => table[other]?.[lower] !== undefined);
      throw dnsError(exists ? 'ENODATA' : 'ENOTFOUND');
    }
    if (!Array.isArray(entry)) throw dnsError(entry.error);
    if (entry.length === 0) throw dnsError('ENODATA');
    return entry;
  };
  return {
    queries,
    resolvePtr: (name) => answer('ptr', name),
    resolve4: async (name) => (await answer('a', name)).map((address) => ({ address, ttl })),
    resolve6: async (name) => (await answer('aaaa', name)).map((address) => ({ address, ttl })),
  };
}
