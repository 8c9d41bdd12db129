/**
 * Clients by address as received, one KnownClient record each: parsing IPv6 text is dear (a
 * tenth of a cached request), the reverse name and generic-name forms built from it are
 * remembered per client object, and so are its skip_networks membership and its judgement memo.
 * A request answered from the cache reads memory nobody touched since that client's last
 * request, and each cold object costs more than the decision itself on these machines: one
 * record per client instead of a parse cache and a membership table is what keeps that small.
 */
import { inNetworks, parseClientIp, type ClientIp, type Network } from '../util/ip.js';
import type { JudgementMemo } from '../judge/judgement-memo.js';
import { FifoMap } from '../util/fifo-map.js';
import { LIMITS } from '../config/limits.js';
import { flatCopy } from '../util/text.js';

export interface KnownClient extends ClientIp {
  /** The skip_networks list `inSkipNetworks` was worked out for. */
  skipNetworks: readonly Network[] | undefined;
  inSkipNetworks: boolean;
  /** Its last judgement, while it stands (src/judge/judgement-memo.ts). */
  memo: JudgementMemo | undefined;
}

/**
 * Bounded first in, first out: a Map lookup is all a known client costs (an LRU's bookkeeping
 * touched five more places in memory per request), and a busy client pushed out is parsed again
 * and judged from the DNS cache.
 */
export class KnownClients {
  private readonly clients = new FifoMap<KnownClient>(LIMITS.parsedClientsSize);

  /** The record for a client_address, or undefined when it is no address. */
  readonly parse = (text: string): KnownClient | undefined => {
    const known = this.clients.get(text);
    if (known !== undefined) return known;
    const ip = parseClientIp(text);
    if (!ip) return undefined;
    const client: KnownClient = { text: ip.text, family: ip.family, parsed: ip.parsed, arpa: undefined, skipNetworks: undefined, inSkipNetworks: false, memo: undefined };
    // Keyed by the text as received, which is the canonical text Postfix sends: then the
    // client's own text (built by the parse, sharing nothing with the read; for IPv6 not one flat
    // string) is the key, and no copy is made (a copy through JSON.parse is also internalized,
    // straight into the old generation, when it is as short as most IPv4 addresses).
    this.clients.set(text === ip.text ? ip.text : flatCopy(text), client);
    return client;
  };

  /** skip_networks membership, worked out once per client and list. */
  readonly inSkipNetworks = (client: KnownClient, networks: readonly Network[]): boolean => {
    if (client.skipNetworks !== networks) {
      client.inSkipNetworks = inNetworks(client, networks);
      client.skipNetworks = networks;
    }
    return client.inSkipNetworks;
  };
}
