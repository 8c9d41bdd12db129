/**
 * A real authoritative DNS server for integration tests: Knot DNS (Debian's `knot`) on a
 * loopback port, serving zones the test writes, with mod-stats so tests count the queries
 * that actually reached the server.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const KNOTD = ['/usr/sbin/knotd', '/usr/bin/knotd'].find((path) => existsSync(path));
export const KNOTC = ['/usr/sbin/knotc', '/usr/bin/knotc'].find((path) => existsSync(path));

/** Why integration tests cannot run here, or undefined when they can. */
export function knotMissing(): string | undefined {
  return KNOTD && KNOTC ? undefined : 'Knot DNS is not installed (apt-get install knot); .ci/run installs it';
}

/** A loopback port free for both UDP and TCP. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = dgram.createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

/** A zone's records (owner-relative lines), or `broken` for a zone that fails to load (SERVFAIL). */
export type ZoneSpec = string[] | 'broken';

export interface Knot {
  port: number;
  /** Cumulative queries per type (PTR, A, AAAA) seen by the server. */
  queryCounts(): Promise<Record<string, number>>;
  /** Cumulative requests per transport (udp4, tcp4, …). */
  protocolCounts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export interface KnotOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  address?: string;
  /** Port (default: a free one). Port 53 is for resolvers that cannot take a port (resolv.conf). */
  port?: number;
  /** A network namespace to run in (/proc/PID/ns/net): Knot then serves only that namespace's loopback. */
  netns?: string;
}

export async function startKnot(zones: Record<string, ZoneSpec>, options: KnotOptions = {}): Promise<Knot> {
  if (!KNOTD || !KNOTC) throw new Error(knotMissing());
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-knot-'));
  const address = options.address ?? '127.0.0.1';
  const port = options.port ?? (await freePort());
  const zoneConfig: string[] = [];
  for (const [origin, spec] of Object.entries(zones)) {
    const file = join(dir, `${origin}.zone`);
    if (spec === 'broken') {
      // A syntax error: Knot keeps the zone configured but unloaded and answers SERVFAIL.
      writeFileSync(file, 'this is not a zone file (\n');
    } else {
      writeFileSync(
        file,
        [
          `$ORIGIN ${origin}.`,
          '$TTL 300',
          `@ SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300`,
          '@ NS ns.example.com.',
          ...spec,
          '',
        ].join('\n'),
      );
    }
    zoneConfig.push(`  - domain: ${origin}`, `    file: "${file}"`);
  }
  const socketPath = join(dir, 'knot.sock');
  writeFileSync(
    join(dir, 'knot.conf'),
    [
      'server:',
      `    rundir: "${dir}"`,
      `    listen: ${address}@${port}`,
      'control:',
      `    listen: "${socketPath}"`,
      'database:',
      `    storage: "${join(dir, 'db')}"`,
      'log:',
      '  - target: stderr',
      '    any: warning',
      'mod-stats:',
      '  - id: default',
      '    query-type: on',
      'template:',
      '  - id: default',
      `    storage: "${dir}"`,
      '    global-module: mod-stats/default',
      'zone:',
      ...zoneConfig,
      '',
    ].join('\n'),
  );
  const inNamespace = (command: string, args: string[]): [string, string[]] => (options.netns ? ['nsenter', [`--net=${options.netns}`, command, ...args]] : [command, args]);
  const child: ChildProcess = spawn(...inNamespace(KNOTD, ['-c', join(dir, 'knot.conf')]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const knotc = (...args: string[]) => run(KNOTC, ['-s', socketPath, ...args], { timeout: 5000 });
  // Ready when the control socket answers and the listener takes a TCP connection.
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`knotd exited: ${stderr}`);
    try {
      await knotc('status');
      if (options.netns) await run(...inNamespace('bash', ['-c', `exec 3<>/dev/tcp/${address}/${port}`]), { timeout: 5000 });
      else await new Promise<void>((resolve, reject) => {
        const socket = net.connect(port, address, () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
      break;
    } catch {
      if (Date.now() - started > 10_000) throw new Error(`knotd did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    port,
    async queryCounts() {
      const { stdout } = await knotc('stats', 'mod-stats.query-type');
      const counts: Record<string, number> = {};
      for (const match of stdout.matchAll(/query-type\[(\w+)\] = (\d+)/g)) counts[match[1] ?? ''] = Number(match[2]);
      return counts;
    },
    async protocolCounts() {
      const { stdout } = await knotc('stats', 'mod-stats.request-protocol');
      const counts: Record<string, number> = {};
      for (const match of stdout.matchAll(/request-protocol\[(\w+)\] = (\d+)/g)) counts[match[1] ?? ''] = Number(match[2]);
      return counts;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A UDP port that takes queries and never answers (a dead resolver). */
export async function startSilentDns(): Promise<{ port: number; received: () => number; stop: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  let received = 0;
  socket.on('message', () => received++);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    received: () => received,
    stop: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
