/**
 * A real unbound (caching resolver) on loopback in front of the project's own authoritative
 * servers, for tests and benches: stub zones point at them, nothing goes elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface UnboundOptions {
  /** Folder for the config and pid file. */
  dir: string;
  port: number;
  /** Zones answered by a server on 127.0.0.1 at the given port. */
  stubs: ReadonlyArray<{ zone: string; port: number }>;
  /** An AAAA name that answers once unbound is up. */
  probe: string;
  /** Extra `server:` lines (cache sizes, query limits). */
  extra?: readonly string[];
  /**
   * Count queries by type (`extended-statistics`) and answer unbound-control on a unix socket in
   * `dir`, for `unboundQueryCounts`.
   */
  control?: boolean;
}

/** The unbound.conf a started unbound runs with (for unbound-control -c). */
export const unboundConfigPath = (dir: string): string => join(dir, 'unbound.conf');

/**
 * Queries unbound received from its clients since it started, by type (PTR, A, AAAA, …): read with
 * `unbound-control stats_noreset` from an unbound started with `control: true`.
 */
export async function unboundQueryCounts(dir: string): Promise<Record<string, number>> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)('unbound-control', ['-c', unboundConfigPath(dir), 'stats_noreset']);
  const counts: Record<string, number> = {};
  for (const match of stdout.matchAll(/^num\.query\.type\.([A-Za-z0-9]+)=(\d+)$/gm)) counts[match[1] ?? ''] = Number(match[2]);
  return counts;
}

export async function startUnbound(options: UnboundOptions): Promise<ChildProcess> {
  const { dir, port } = options;
  const config = unboundConfigPath(dir);
  writeFileSync(
    config,
    [
      'server:',
      `  interface: 127.0.0.1@${port}`,
      `  port: ${port}`,
      '  do-not-query-localhost: no',
      '  module-config: "iterator"',
      '  num-threads: 1',
      '  access-control: 127.0.0.0/8 allow',
      '  chroot: ""',
      '  username: ""',
      `  directory: "${dir}"`,
      `  pidfile: "${join(dir, 'unbound.pid')}"`,
      '  use-syslog: no',
      '  logfile: ""',
      '  verbosity: 0',
      // Without this, unbound walks the 32 nibble labels of an ip6.arpa name a few at a time
      // (QNAME minimisation, RFC 9156): about six delayed round trips per client instead of two.
      '  qname-minimisation: no',
      // unbound serves 2001:db8::/32's reverse zone empty by default (RFC 6303); ask the stubs.
      '  local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." nodefault',
      ...(options.extra ?? []).map((line) => `  ${line}`),
      ...(options.control ? ['  extended-statistics: yes', 'remote-control:', '  control-enable: yes', `  control-interface: "${join(dir, 'control.sock')}"`, '  control-use-cert: no'] : []),
      ...options.stubs.flatMap((stub) => ['stub-zone:', `  name: "${stub.zone}"`, `  stub-addr: 127.0.0.1@${stub.port}`]),
      '',
    ].join('\n'),
  );
  const child = spawn('unbound', ['-d', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const { Resolver } = await import('node:dns/promises');
  const probe = new Resolver({ timeout: 200, tries: 1 });
  probe.setServers([`127.0.0.1:${port}`]);
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`unbound exited: ${stderr}`);
    try {
      await probe.resolve6(options.probe);
      return child;
    } catch {
      if (Date.now() - started > 15_000) throw new Error(`unbound did not answer: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
