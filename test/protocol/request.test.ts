/**
 * A request waiting for DNS keeps the text it was read in alive only when that text is its own
 * (LIMITS.maxPinnedRequestChars): Postfix sends one request and waits for the answer, so that is
 * the common case and costs no copies; a peer that pipelines many requests into one read must not
 * make each waiting request keep the whole read.
 */
import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { fullCollection } from '../../src/dns/channels.js';
import { PolicyDecoder, type PolicyAttributes } from '../../src/protocol/codec.js';
import { keptWhileWaiting, parsePolicyRequest, type PolicyRequest } from '../../src/protocol/request.js';

const request = (n: number, padding = ''): string =>
  `request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.${n % 250}\nhelo_name=h${n}.example.com\n` +
  `instance=${n.toString(16).padStart(12, '0')}.1\nqueue_id=\nrecipient=bob${n}@example.org\nsasl_username=\nccert_subject=${padding}\n\n`;

function decoded(text: string): PolicyAttributes[] {
  return new PolicyDecoder().push(Buffer.from(text, 'latin1')).flatMap((event) => (event.kind === 'request' ? [event.attributes] : []));
}

function parsed(attributes: PolicyAttributes): PolicyRequest {
  const result = parsePolicyRequest(attributes);
  if (!result.ok) throw new Error(result.problem);
  return result.request;
}

t.test('a request read on its own waits as it is: no copies', async (t) => {
  const [attributes] = decoded(request(1));
  const original = parsed(attributes as PolicyAttributes);
  t.equal(keptWhileWaiting(attributes as PolicyAttributes, original), original);
});

t.test('requests pipelined into one large read are copied, the same values, and keep none of it', async (t) => {
  const collect = fullCollection();
  if (collect === undefined) return t.fail('no full collection here');
  const waiting: PolicyRequest[] = [];
  collect();
  const before = process.memoryUsage().heapUsed;
  // 40 reads of ~500 KB each (70 requests with a 7,000-character attribute nobody reads; under
  // node's 1 MB at which a read's text would be an external string, outside the heap measured
  // here; the daemon reads at most 64 KiB at once), a request of each kept waiting.
  for (let read = 0; read < 40; read++) {
    const text = Array.from({ length: 70 }, (_, i) => request(read * 70 + i, 'x'.repeat(7000))).join('');
    const attributes = decoded(text);
    const first = attributes[0] as PolicyAttributes;
    const original = parsed(first);
    const kept = keptWhileWaiting(first, original);
    t.not(kept, original);
    t.same(kept, original);
    waiting.push(kept);
  }
  collect();
  const grown = process.memoryUsage().heapUsed - before;
  t.equal(waiting.length, 40);
  t.ok(grown < 8 << 20, `heap grew by ${(grown / 1048576).toFixed(1)} MiB for 40 waiting requests (the reads were 20 MB)`);
  t.ok(LIMITS.maxPinnedRequestChars < 1 << 20);
});
