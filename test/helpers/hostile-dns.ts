/**
 * A small hostile authoritative DNS server on loopback (UDP and TCP), for the attack tests: it
 * answers every PTR query under its reverse zone with as many long names as fit in one ~60 KB
 * message (or thousands of compressed duplicates of one name), as anyone who owns a reverse
 * zone may publish. It is written by hand because no DNS library produces such answers on
 * purpose (they deduplicate record sets). Over UDP a large answer is truncated (TC), so the
 * resolver in front retries over TCP, as real resolvers do (RFC 7766).
 *
 * One address, `good`, is a well-behaved client: PTR `good.<forwardZone>` with a matching AAAA.
 * Every other A/AAAA question in the forward zone has no data (NOERROR, SOA in authority).
 */
import { listenDns } from './dns-listener.js';

export interface HostileDnsOptions {
  /** The forward zone the PTR names live in, e.g. `hostile.example`. */
  forwardZone: string;
  /**
   * `distinct`: ~240 different names of 248 characters; `duplicates`: one name thousands of
   * times; `silent`: no answer at all (a zone whose servers are gone).
   */
  style: 'distinct' | 'duplicates' | 'silent';
  /** The reverse name (without the root dot) of the well-behaved client and its address. */
  good: { reverseName: string; address: string };
}

export interface HostileDns {
  port: number;
  /** Questions answered, by type. */
  readonly answered: { ptr: number; other: number };
  stop(): Promise<void>;
}

const TYPE = { A: 1, SOA: 6, PTR: 12, AAAA: 28 } as const;

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter((label) => label !== '');
  return Buffer.concat([...parts.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

function readQuestion(message: Buffer): { id: number; name: string; type: number; end: number } | undefined {
  if (message.length < 17) return undefined;
  let offset = 12;
  const labels: string[] = [];
  for (;;) {
    const length = message[offset];
    if (length === undefined || length > 63) return undefined;
    offset++;
    if (length === 0) break;
    labels.push(message.subarray(offset, offset + length).toString('ascii').toLowerCase());
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return { id: message.readUInt16BE(0), name: labels.join('.'), type: message.readUInt16BE(offset), end: offset + 4 };
}

function record(type: number, rdata: Buffer, ttl = 300): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(0xc00c, 0); // the owner is the question's name (compression pointer)
  fixed.writeUInt16BE(type, 2);
  fixed.writeUInt16BE(1, 4); // IN
  fixed.writeUInt32BE(ttl, 6);
  fixed.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([fixed, rdata]);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2));
  return bytes;
}

/** The answer to one query: header, the question echoed, answers, authority. */
function respond(query: Buffer, options: HostileDnsOptions, answered: HostileDns['answered'], udp: boolean): Buffer | undefined {
  const question = readQuestion(query);
  if (!question) return undefined;
  const echoed = query.subarray(12, question.end);
  const answers: Buffer[] = [];
  const authority: Buffer[] = [];
  const zone = options.forwardZone;
  const inForwardZone = question.name === zone || question.name.endsWith(`.${zone}`);
  if (question.type === TYPE.PTR && question.name === options.good.reverseName) {
    answers.push(record(TYPE.PTR, encodeName(`good.${zone}`)));
  } else if (question.type === TYPE.PTR && options.style === 'silent') {
    return undefined;
  } else if (question.type === TYPE.PTR) {
    answered.ptr++;
    // The first PTR's rdata starts after header, question and the first record's fixed part.
    const firstRdata = 12 + echoed.length + 12;
    const suffix = encodeName(zone);
    let size = firstRdata;
    for (let i = 0; size < 60_000; i++) {
      let rdata: Buffer;
      if (options.style === 'duplicates' && i > 0) {
        rdata = Buffer.from([0xc0 | (firstRdata >> 8), firstRdata & 0xff]);
      } else {
        // Four long labels then a pointer to the zone written in the first record.
        const labels = [`${'x'.repeat(56)}${String(i).padStart(7, '0')}`, 'y'.repeat(63), 'z'.repeat(63), 'w'.repeat(40)];
        const head = Buffer.concat(labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])));
        const suffixAt = firstRdata + head.length;
        rdata = i === 0 ? Buffer.concat([head, suffix]) : Buffer.concat([head, Buffer.from([0xc0 | (suffixAt >> 8), suffixAt & 0xff])]);
      }
      if (size + 12 + rdata.length > 60_000) break;
      answers.push(record(TYPE.PTR, rdata));
      // The first record's fixed part is already in `size`.
      size += (i === 0 ? 0 : 12) + rdata.length;
    }
  } else if (inForwardZone && question.type === TYPE.AAAA && question.name === `good.${zone}`) {
    answers.push(record(TYPE.AAAA, ipv6Bytes(options.good.address)));
  } else {
    answered.other++;
    const soa = Buffer.concat([encodeName(`ns.${zone}`), encodeName(`hostmaster.${zone}`), Buffer.from([0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 3, 132, 0, 9, 58, 128, 0, 0, 1, 44])]);
    authority.push(record(TYPE.SOA, soa, 300));
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(question.id, 0);
  const truncated = udp && answers.length > 1;
  // QR, AA, and TC for a UDP answer that would not fit.
  header.writeUInt16BE(0x8400 | (truncated ? 0x0200 : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(truncated ? 0 : answers.length, 6);
  header.writeUInt16BE(truncated ? 0 : authority.length, 8);
  return truncated ? Buffer.concat([header, echoed]) : Buffer.concat([header, echoed, ...answers, ...authority]);
}

export async function startHostileDns(options: HostileDnsOptions): Promise<HostileDns> {
  const answered = { ptr: 0, other: 0 };
  const server = await listenDns((query, udp) => respond(query, options, answered, udp));
  return { port: server.port, answered, stop: server.stop };
}
