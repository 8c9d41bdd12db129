/**
 * An authoritative DNS server on loopback (UDP and TCP) whose reverse zone gives every address
 * `names` PTR names of its own (`n0.h<address>.<zone>` …) and whose forward zone never answers:
 * each new client makes the daemon fan out into `names` forward queries that all time out, the
 * most a PTR answer can cost it (issue 24, case 3). One address, `good`, is well behaved: PTR
 * `good.<zone>` and an AAAA record back to it. Over UDP every PTR answer is truncated (TC), so
 * the resolver asks again over TCP, as it would for an answer of this size.
 */
import { listenDns } from './dns-listener.js';

export interface FanoutDnsOptions {
  zone: string;
  names: number;
  good: { reverseName: string; address: string };
}

export interface FanoutDns {
  port: number;
  readonly asked: { ptr: number; forward: number };
  stop(): Promise<void>;
}

const TYPE = { PTR: 12, AAAA: 28 } as const;

function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((label) => label !== '');
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

function readQuestion(message: Buffer): { id: number; name: string; type: number; end: number } | undefined {
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

function record(type: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(0xc00c, 0); // the owner is the question's name
  fixed.writeUInt16BE(type, 2);
  fixed.writeUInt16BE(1, 4);
  fixed.writeUInt32BE(300, 6);
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

function respond(query: Buffer, options: FanoutDnsOptions, asked: FanoutDns['asked'], udp: boolean): Buffer | undefined {
  const question = readQuestion(query);
  if (!question) return undefined;
  const answers: Buffer[] = [];
  if (question.type === TYPE.PTR && question.name === options.good.reverseName) {
    answers.push(record(TYPE.PTR, encodeName(`good.${options.zone}`)));
  } else if (question.type === TYPE.AAAA && question.name === `good.${options.zone}`) {
    answers.push(record(TYPE.AAAA, ipv6Bytes(options.good.address)));
  } else if (question.type === TYPE.PTR) {
    asked.ptr++;
    // The address's own nibbles make its names its own: no two clients share a forward query.
    const tag = question.name.split('.').slice(0, 8).join('');
    for (let i = 0; i < options.names; i++) answers.push(record(TYPE.PTR, encodeName(`n${i}.h${tag}.${options.zone}`)));
  } else {
    asked.forward++;
    return undefined; // the forward zone's servers are gone
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(question.id, 0);
  const truncated = udp && answers.length > 1;
  header.writeUInt16BE(0x8400 | (truncated ? 0x0200 : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(truncated ? 0 : answers.length, 6);
  const echoed = query.subarray(12, question.end);
  return truncated ? Buffer.concat([header, echoed]) : Buffer.concat([header, echoed, ...answers]);
}

export async function startFanoutDns(options: FanoutDnsOptions): Promise<FanoutDns> {
  const asked = { ptr: 0, forward: 0 };
  const server = await listenDns((query, udp) => respond(query, options, asked, udp));
  return { port: server.port, asked, stop: server.stop };
}
