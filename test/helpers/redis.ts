/**
 * A real Redis for the shared throttle store's tests (issue 27): Debian's `redis-server` on a
 * loopback port (and a unix socket) in a temporary directory, no persistence, so a restart comes
 * back empty — no keys and no scripts, as after a real restart. Tests can kill it, pause it
 * (SIGSTOP) and resume it, or start it again on the same port.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './knot.js';

const run = promisify(execFile);

export const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/sbin/redis-server'].find((path) => existsSync(path));
export const REDIS_CLI = ['/usr/bin/redis-cli'].find((path) => existsSync(path));

/** Why Redis tests cannot run here, or undefined when they can. */
export function redisMissing(): string | undefined {
  return REDIS_SERVER && REDIS_CLI ? undefined : 'redis-server is not installed (apt-get install redis-server); .ci/run installs it';
}

export interface RedisOptions {
  /** requirepass: clients must AUTH with it. */
  password?: string;
  /** maxmemory in bytes with noeviction: writes past it answer OOM. */
  maxmemory?: number;
  /** TLS only on the TCP port (rediss://), with this certificate; clients are not asked for one. */
  tls?: { cert: string; key: string; ca: string };
}

export interface RedisServer {
  readonly port: number;
  readonly socketPath: string;
  readonly url: string;
  readonly dir: string;
  pid(): number | undefined;
  /** redis-cli against the server (with the password, if any); its stdout. */
  cli(...args: string[]): Promise<string>;
  /** SIGKILL, as a crash: no goodbye to clients. */
  kill(): Promise<void>;
  pause(): void;
  resume(): void;
  /** Start again on the same port and socket (empty: no keys, no scripts). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  if (!REDIS_SERVER || !REDIS_CLI) throw new Error(redisMissing());
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-redis-'));
  const port = await freePort();
  const socketPath = join(dir, 'redis.sock');
  const config = [
    ...(options.tls
      ? ['port 0', `tls-port ${port}`, `tls-cert-file ${options.tls.cert}`, `tls-key-file ${options.tls.key}`, `tls-ca-cert-file ${options.tls.ca}`, 'tls-auth-clients no']
      : [`port ${port}`]),
    'bind 127.0.0.1',
    `unixsocket ${socketPath}`,
    'unixsocketperm 700',
    `dir ${dir}`,
    "save ''",
    'appendonly no',
    'daemonize no',
    'loglevel warning',
    'logfile ""',
    ...(options.password ? [`requirepass ${options.password}`] : []),
    ...(options.maxmemory ? [`maxmemory ${options.maxmemory}`, 'maxmemory-policy noeviction'] : []),
  ];
  writeFileSync(join(dir, 'redis.conf'), `${config.join('\n')}\n`);
  let child: ChildProcess | undefined;
  let stderr = '';
  const cliArgs = [
    '-p', String(port), '-h', '127.0.0.1',
    ...(options.tls ? ['--tls', '--cacert', options.tls.ca] : []),
    ...(options.password ? ['--no-auth-warning', '-a', options.password] : []),
  ];
  const server: RedisServer = {
    port,
    socketPath,
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    dir,
    pid: () => child?.pid,
    async cli(...args) {
      const { stdout } = await run(REDIS_CLI, [...cliArgs, ...args], { timeout: 5000 });
      return stdout.trim();
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async start() {
      rmSync(socketPath, { force: true });
      child = spawn(REDIS_SERVER, [join(dir, 'redis.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      await waitForPort(port, () => (child?.exitCode !== null ? `redis-server exited: ${stderr}` : undefined));
    },
    async stop() {
      server.resume();
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

async function waitForPort(port: number, failed: () => string | undefined): Promise<void> {
  const started = Date.now();
  for (;;) {
    const problem = failed();
    if (problem) throw new Error(problem);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() - started > 10_000) throw new Error(`redis-server did not start on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
