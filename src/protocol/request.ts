/**
 * Turns decoded attributes into a validated policy request. Anything Postfix would never
 * send is "trouble" (SMTPD_POLICY_README): the caller logs it and hangs up without replying.
 */
import { AttributeNames, pickAttributes, sharedTextLength, type PolicyAttributes } from './codec.js';
import { parseClientIp, type ClientIp } from '../util/ip.js';
import { LIMITS } from '../config/limits.js';
import { detachedCopy } from '../util/text.js';

/**
 * One validated request. Its strings may share memory with the text of the whole read they
 * were cut from (src/util/text.ts): whatever is kept after the request is answered (cache keys,
 * per-message memory) is copied with detachedCopy() first.
 */
export interface PolicyRequest<Client extends ClientIp = ClientIp> {
  /** The parsed client address (the daemon's own record of it, which is a ClientIp too). */
  readonly client: Client;
  /** Exactly as received, for logs only (length-bounded). */
  readonly clientAddress: string;
  readonly heloName: string;
  readonly instance: string;
  readonly queueId: string;
  readonly protocolState: string;
  readonly saslUsername: string;
  readonly recipient: string;
}

export type RequestParse<Client extends ClientIp = ClientIp> = { ok: true; request: PolicyRequest<Client> } | { ok: false; problem: string };

/**
 * The request with its strings copied out of the read's text, for a request that waits for DNS:
 * slices would keep the whole read alive (and copied by every young-generation GC) meanwhile.
 */
export function detachedRequest<Client extends ClientIp>(request: PolicyRequest<Client>): PolicyRequest<Client> {
  return {
    client: request.client,
    clientAddress: detachedCopy(request.clientAddress),
    heloName: detachedCopy(request.heloName),
    instance: detachedCopy(request.instance),
    queueId: detachedCopy(request.queueId),
    protocolState: detachedCopy(request.protocolState),
    saslUsername: detachedCopy(request.saslUsername),
    recipient: detachedCopy(request.recipient),
  };
}

/**
 * The request as it waits for DNS, which may take seconds. Its strings were cut from the text
 * they were read in: from a read of its own (Postfix sends one request and waits for the answer)
 * they keep only that alive, and copying them was a score of objects per new client; from a
 * larger read (a peer that pipelines, or one long request) they are copied and keep none of it.
 */
export function keptWhileWaiting<Client extends ClientIp>(attributes: PolicyAttributes, request: PolicyRequest<Client>): PolicyRequest<Client> {
  return sharedTextLength(attributes) > LIMITS.maxPinnedRequestChars ? detachedRequest(request) : request;
}

/** Bound a peer-supplied string before it is kept or logged. */
export function bounded(value: string | undefined): string {
  if (value === undefined) return '';
  return value.length > LIMITS.maxLogFieldChars ? `${value.slice(0, LIMITS.maxLogFieldChars)}…` : value;
}

/** The attributes a request is made of, read in one pass (their indexes below). */
const ATTRIBUTES = new AttributeNames([
  'request',
  'client_address',
  'helo_name',
  'instance',
  'queue_id',
  'protocol_state',
  'sasl_username',
  'recipient',
]);

/**
 * Validate one request: it must be `request=smtpd_access_policy` with a parsable client_address.
 * `parseClient` may remember addresses it has parsed (the daemon does, per client).
 */
export function parsePolicyRequest<Client extends ClientIp = ClientIp>(
  attributes: PolicyAttributes,
  parseClient: (text: string) => Client | undefined = parseClientIp as (text: string) => Client | undefined,
): RequestParse<Client> {
  const values = pickAttributes(attributes, ATTRIBUTES);
  const type = values[0];
  if (type === undefined) return { ok: false, problem: 'missing "request" attribute' };
  // SMTPD_POLICY_README: the only request type Postfix sends.
  if (type !== 'smtpd_access_policy') return { ok: false, problem: 'unknown request type' };
  const address = values[1];
  if (address === undefined || address === '') return { ok: false, problem: 'missing client_address' };
  const client = parseClient(address);
  if (!client) return { ok: false, problem: 'unparsable client_address' };
  return {
    ok: true,
    request: {
      client,
      clientAddress: bounded(address),
      heloName: bounded(values[2]),
      instance: bounded(values[3]),
      queueId: bounded(values[4]),
      protocolState: bounded(values[5]),
      saslUsername: bounded(values[6]),
      recipient: bounded(values[7]),
    },
  };
}
