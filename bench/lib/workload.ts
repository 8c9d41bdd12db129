/** Request streams the load generator sends: realistic Postfix requests over chosen client IPs. */
import { ZONE_SIZE, clientAddress } from './stack.js';

export type Workload = (
  | { kind: 'hot'; pool: number }
  /** Hot over the zone's first `pool` mismatch clients (every 50th, from 48): a class to throttle. */
  | { kind: 'hot-mismatch'; pool: number }
  | { kind: 'cold'; offset: number }
  /** Zipf-like over `clients` (default: the whole zone). */
  | { kind: 'mixed'; seed: number; clients?: number }
  | { kind: 'fixed'; n: number }
) & {
  /**
   * Every this-many-th client greets with a HELO name of its own (`relayN.example.com`, which
   * does not resolve) instead of its PTR name, as in the cold workload (a fifth). The
   * daemon's default (`helo_mismatch_action = dunno`) asks no query for it.
   */
  heloOwnEvery?: number;
};

/** A deterministic PRNG (mulberry32), so every run of a workload sends the same sequence. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Client index for request i. Mixed is Zipf-like (s = 1) over the whole zone, as repeat senders are. */
export function clientIndex(workload: Workload): (i: number) => number {
  switch (workload.kind) {
    case 'hot':
      return (i) => (i * 7919) % workload.pool;
    case 'hot-mismatch':
      return (i) => ((i * 7919) % workload.pool) * 50 + 48;
    case 'cold':
      return (i) => (workload.offset + i) % ZONE_SIZE;
    case 'fixed':
      return () => workload.n;
    case 'mixed': {
      const random = prng(workload.seed);
      const clients = Math.min(ZONE_SIZE, workload.clients ?? ZONE_SIZE);
      const harmonic = Math.log(clients) + 0.5772;
      return () => Math.min(clients - 1, Math.floor(Math.exp(random() * harmonic)) - 1);
    }
  }
}

let instanceCounter = 0;

/** The HELO name client n greets with under a workload: its PTR name, or one of its own. */
export function heloName(n: number, workload?: Pick<Workload, 'heloOwnEvery'>): string {
  const every = workload?.heloOwnEvery;
  return every && n % every === 0 ? `relay${n}.example.com` : `h${n}.example.com`;
}

/** A ~500-byte smtpd_access_policy request like Postfix 3.7 sends at RCPT time. */
export function policyRequest(n: number, helo = `h${n}.example.com`): string {
  const address = clientAddress(n);
  instanceCounter++;
  return (
    'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n' +
    `client_address=${address}\nclient_name=h${n}.example.com\nclient_port=41234\nreverse_client_name=h${n}.example.com\n` +
    `server_address=2001:db8:ffff::25\nserver_port=25\nhelo_name=${helo}\n` +
    `sender=newsletter@h${n}.example.com\nrecipient=bob@example.org\nrecipient_count=0\nqueue_id=\n` +
    `instance=${(instanceCounter & 0xfffff).toString(16)}.${(n & 0xffff).toString(16)}.${instanceCounter.toString(16)}.0\n` +
    'size=48213\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\n' +
    'ccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n' +
    'encryption_keysize=256\npolicy_context=\ncompatibility_level=3.6\nmail_version=3.7.11\n\n'
  );
}
