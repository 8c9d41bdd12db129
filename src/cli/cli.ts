/**
 * Process concerns only: argv, the config file on disk, signals, exit codes, and the table of
 * commands (COMMANDS: what each takes and runs; `main` parses argv and dispatches through it).
 * Everything else lives in the modules it wires.
 */
import { closeSync, constants as fsConstants, existsSync, fstatSync, openSync, readFileSync, readSync, type Stats } from 'node:fs';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { LIMITS } from '../config/limits.js';
import { ConfigError, DEFAULT_CONFIG_PATH, defaultConfig, formatEffective, parseConfig, type Config } from '../config/config.js';
import { startDaemon } from '../daemon/daemon.js';
import { createSystemResolver, directLookups, queryDeadlineMs } from '../dns/resolver.js';
import { renderJson, renderText } from './check-render.js';
import { checkTargets } from './diagnose.js';
import { parseClientIp } from '../util/ip.js';
import { hostnameProblem, normaliseName } from '../dns/iprev.js';
import { createLogger, flushLogger, logAlways } from '../log/logger.js';
import { unfinishedFileProblem } from '../config/reload.js';
import { runReplay, runReport } from '../reports/log-commands.js';
import { runQuery } from './query.js';

declare const FCRDNS_VERSION: string | undefined;
export const VERSION = typeof FCRDNS_VERSION === 'string' ? FCRDNS_VERSION : '0.0.0-dev';

/** sysexits(3): EX_USAGE and EX_CONFIG; SPEC: 64+ for usage and config errors. */
export const EXIT = { pass: 0, permanent: 1, temporary: 2, usage: 64, config: 78, software: 70 } as const;

const USAGE = `Usage:
  fcrdns-policyd [--config FILE]            run the policy daemon (JSON logs on stdout)
  fcrdns-policyd check IP|HOST... [--helo NAME] [--config FILE] [--json]
                                            look clients up (a host: each of its A and AAAA
                                            addresses) and explain the verdict and the fix
  fcrdns-policyd config [--config FILE]     validate the config and print every setting
  fcrdns-policyd report [FILE...] [--since WHEN] [--until WHEN] [--top N] [--tag NAME] [--ascii] [--json]
                                            what the decision log says: actions, results, a
                                            chart per hour, failing senders, resolver trouble
  fcrdns-policyd replay --config NEW.conf [FILE...] [--since WHEN] [--until WHEN] [--top N] [--tag NAME] [--json]
                                            what NEW.conf would have answered to the logged
                                            requests, without any DNS query
  fcrdns-policyd query [--config FILE] client_address=IP [NAME=VALUE...]
                                            send one policy request to the running daemon
                                            (at the config's listen address) and print its answer
  fcrdns-policyd --version | --help

Without --config, ${DEFAULT_CONFIG_PATH} is read if it exists, else built-in defaults apply.
FILE: the daemon's JSON log, plain or .gz; "-" or none: standard input (journalctl -u fcrdns-policyd -o cat).
WHEN: a date (2026-11-30, 2026-11-30T06:00:00Z) or a time ago (90m, 24h, 7d).
NAME: the syslog tag of the daemon's lines in syslog/journal input (default fcrdns-policyd); other tags are skipped.
Exit status of check: 0 all pass, 1 a permanent failure, 2 only temporary failures, 64+ usage/config error.`;

export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** Colour only on a terminal. */
  isTerminal?: boolean;
  /** Progress lines (report, replay) only when standard error is a terminal. */
  errIsTerminal?: boolean;
  /** Standard input for report and replay (tests). */
  stdin?: import('node:stream').Readable;
}

const stdio: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTerminal: process.stdout.isTTY === true,
};

/**
 * Why this process's V8 heap cannot hold the configured cache, or undefined. The shipped
 * launchers start node with a heap cap sized for the default cache_size (BENCHMARKS.md: it keeps
 * RSS near the live data); a larger cache_size needs a larger cap, and saying so at start or
 * reload beats an out-of-memory crash under load.
 */
export function heapProblem(config: Config, heapLimitBytes = v8.getHeapStatistics().heap_size_limit): string | undefined {
  const needed = LIMITS.heapBaseBytes + config.cacheSize * LIMITS.heapBytesPerCacheEntry;
  if (heapLimitBytes >= needed) return undefined;
  const mb = (bytes: number) => Math.ceil(bytes / (1024 * 1024));
  return (
    `${config.source}: cache_size = ${config.cacheSize} needs about ${mb(needed)} MB of heap, but node runs with a ` +
    `${mb(heapLimitBytes)} MB heap limit: raise --max-old-space-size to at least ${mb(needed)} where node is started ` +
    '(systemd unit ExecStart, Docker ENTRYPOINT), or lower cache_size'
  );
}

/** Load the config: the named file, else the default path if present, else built-in defaults. */
export function loadConfig(path: string | undefined): Config {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (file === undefined) return defaultConfig();
  return parseConfig(readConfigFile(file), file);
}

/**
 * The config for a reload: as loadConfig, but a file that looks unfinished (empty, no setting,
 * no final newline: caught mid-write) is refused, since a running configuration is there to keep.
 */
export function loadReloadConfig(path: string | undefined): Config {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (file === undefined) return defaultConfig();
  const text = readConfigFile(file);
  const unfinished = unfinishedFileProblem(text, file);
  if (unfinished !== undefined) throw new ConfigError([unfinished]);
  return parseConfig(text, file);
}

/** A config file is a few KiB; past this it is a mistake (a log or a device named by accident). */
const MAX_CONFIG_BYTES = 1024 * 1024;

const FILE_KINDS: Array<[keyof Pick<Stats, 'isDirectory' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'>, string]> = [
  ['isDirectory', 'a directory'],
  ['isFIFO', 'a FIFO'],
  ['isSocket', 'a socket'],
  ['isCharacterDevice', 'a character device'],
  ['isBlockDevice', 'a block device'],
];

/**
 * The text of a config file: only a regular file (or a symlink to one), at most 1 MiB. Opened
 * without blocking, so a FIFO cannot stall start-up or a SIGHUP reload waiting for a writer, and
 * read with a bound, so /dev/zero or a file that keeps growing cannot fill the heap.
 */
export function readConfigFile(file: string): string {
  const fail = (why: string): never => {
    throw new ConfigError([`${file}: ${why}`]);
  };
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (error) {
    return fail(`cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      const kind = FILE_KINDS.find(([test]) => stats[test]())?.[1] ?? 'not a regular file';
      return fail(`is ${kind}, not a regular file: name the config file itself`);
    }
    const tooBig = `is over 1 MiB (${MAX_CONFIG_BYTES} bytes); a config file is a few KiB: is this the right file?`;
    if (stats.size > MAX_CONFIG_BYTES) return fail(tooBig);
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let used = 0;
    for (;;) {
      const read = readSync(fd, buffer, used, buffer.length - used, null);
      if (read === 0) break;
      used += read;
      if (used > MAX_CONFIG_BYTES) return fail(tooBig);
    }
    return buffer.toString('utf8', 0, used);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    return fail(`cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  } finally {
    closeSync(fd);
  }
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  helo: { type: 'string' },
  json: { type: 'boolean' },
  since: { type: 'string' },
  until: { type: 'string' },
  top: { type: 'string' },
  ascii: { type: 'boolean' },
  tag: { type: 'string' },
  version: { type: 'boolean', short: 'V' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseArgv(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
}

type Options = ReturnType<typeof parseArgv>['values'];

/** The options only some commands take, in the order a misplaced one is reported. */
const FLAGS = ['helo', 'json', 'since', 'until', 'top', 'ascii', 'tag'] as const;

/** What a command runs with: the arguments after its name, the options, the loaded config. */
interface Invocation {
  readonly args: readonly string[];
  readonly options: Options;
  readonly config: Config;
  readonly io: Output;
}

interface Command {
  /** The options of FLAGS it takes (--config goes with every command). */
  readonly flags: ReadonlyArray<(typeof FLAGS)[number]>;
  /** A usage problem seen before the config is read, or undefined. */
  readonly misuse?: (options: Options) => string | undefined;
  /** report reads no configuration: a broken file at the default path must not stop it. */
  readonly readsConfig?: false;
  run(invocation: Invocation): number | Promise<number>;
}

/** The daemon: what runs without a command. */
const DAEMON: Command = { flags: [], run: runDaemonCommand };

/** The commands by name; a Map, so that a name such as "toString" is unknown, not inherited. */
const COMMANDS = new Map<string, Command>([
  ['config', { flags: [], run: runConfigCommand }],
  ['check', { flags: ['helo', 'json'], run: runCheckCommand }],
  ['query', { flags: [], run: ({ config, args, io }) => runQuery(config.listen, args, io) }],
  ['report', { flags: ['json', 'since', 'until', 'top', 'ascii', 'tag'], readsConfig: false, run: (given) => runReport(...logCommandArgs(given)) }],
  ['replay', { flags: ['json', 'since', 'until', 'top', 'tag'], misuse: replayMisuse, run: (given) => runReplay(given.config, ...logCommandArgs(given)) }],
]);

/** Entry point; resolves to the exit status for one-shot commands, or never for the daemon. */
export async function main(argv: string[], io: Output = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgv(argv);
  } catch (error) {
    return usageError(io, (error as Error).message);
  }
  const { values: options, positionals } = parsed;
  if (options.help) {
    io.out(`${USAGE}\n`);
    return EXIT.pass;
  }
  if (options.version) {
    io.out(`fcrdns-policyd ${VERSION}\n`);
    return EXIT.pass;
  }
  const [name, ...args] = positionals;
  const command = name === undefined ? DAEMON : COMMANDS.get(name);
  const misuse = misplacedFlag(command, options) ?? command?.misuse?.(options);
  if (misuse) return usageError(io, misuse);

  let config: Config;
  try {
    config = command?.readsConfig === false ? defaultConfig() : loadConfig(options.config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`${error.problems.join('\n')}\n`);
    return EXIT.config;
  }
  // An unknown command is reported after the config is read, as it always was (a broken config
  // file is reported first, with exit 78).
  if (command === undefined) return usageError(io, `unknown command ${JSON.stringify(name)}`);
  return command.run({ args, options, config, io });
}

function usageError(io: Output, message: string): number {
  io.err(`fcrdns-policyd: ${message}\n\n${USAGE}\n`);
  return EXIT.usage;
}

/** The first option given that this command does not take, as a usage message naming the commands that do. */
function misplacedFlag(command: Command | undefined, options: Options): string | undefined {
  const flag = FLAGS.find((name) => options[name] !== undefined && !command?.flags.includes(name));
  if (flag === undefined) return undefined;
  const takers = [...COMMANDS].filter(([, other]) => other.flags.includes(flag)).map(([name]) => `"${name}"`);
  return `--${flag} only goes with ${takers.join(' or ')}`;
}

function runDaemonCommand({ options, config, io }: Invocation): Promise<number> | number {
  const problem = heapProblem(config);
  if (problem) {
    io.err(`${problem}\n`);
    return EXIT.config;
  }
  return runDaemon(config, options.config);
}

function runConfigCommand({ args, config, io }: Invocation): number {
  if (args.length > 0) return usageError(io, '"config" takes no arguments');
  io.out(formatEffective(config));
  return EXIT.pass;
}

function runCheckCommand({ args, options, config, io }: Invocation): Promise<number> | number {
  if (args.length === 0) return usageError(io, '"check" needs an IP address or host name');
  const bad = args.find((target) => parseClientIp(target) === undefined && hostnameProblem(normaliseName(target)) !== undefined);
  if (bad !== undefined) {
    io.err(`fcrdns-policyd: not an IP address or host name: ${JSON.stringify(bad)}\n`);
    return EXIT.usage;
  }
  return runCheck(args, config, { helo: options.helo, json: options.json === true }, io);
}

/** replay compares with a configuration it is given: the running one is what the log already shows. */
function replayMisuse(options: Options): string | undefined {
  return options.config === undefined ? '"replay" needs --config NEW.conf: the configuration to replay the log under' : undefined;
}

/** The options and output of report and replay. */
function logCommandArgs({ args, options, io }: Invocation) {
  const { since, until, top, tag } = options;
  const logOptions = { files: args, since, until, top, tag, json: options.json === true, ascii: options.ascii === true };
  const logIo = { out: io.out, err: io.err, errIsTerminal: io.errIsTerminal ?? process.stderr.isTTY === true, ...(io.stdin ? { stdin: io.stdin } : {}) };
  return [logOptions, logIo] as const;
}

/** Run the daemon until SIGTERM/SIGINT; SIGHUP re-reads the config file. */
async function runDaemon(config: Config, configPath: string | undefined): Promise<number> {
  const logger = createLogger(config.logLevel);
  process.on('uncaughtException', (error) => {
    // A bug, not bad input (bad input is handled where it arrives): log it and let the
    // service manager restart a clean process rather than run on in an unknown state.
    logger.fatal({ err: error }, 'uncaught exception; exiting');
    flushLogger(logger);
    process.exit(EXIT.software);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection; exiting');
    flushLogger(logger);
    process.exit(EXIT.software);
  });
  let daemon;
  try {
    daemon = await startDaemon({ config, logger });
  } catch (error) {
    logger.fatal({ err: error }, 'cannot start');
    flushLogger(logger);
    return EXIT.software;
  }
  const running = daemon;
  warnIfFewFileDescriptors(config, logger);
  process.on('SIGHUP', () => {
    try {
      const next = loadReloadConfig(configPath);
      const problem = heapProblem(next);
      if (problem) throw new ConfigError([problem]);
      running.reload(next);
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [String(error)];
      // The operator's own action: never held back by the warning window.
      logAlways(() => logger.error({ problems }, 'reload failed; keeping the previous configuration'));
    }
  });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping: answering requests in flight');
      const force = setTimeout(() => {
        logger.warn('requests still in flight after the stop deadline; exiting anyway');
        flushLogger(logger);
        resolve(EXIT.pass);
      }, queryDeadlineMs({ timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries }) + 5000);
      force.unref();
      void running.close().then(() => {
        clearTimeout(force);
        flushLogger(logger);
        resolve(EXIT.pass);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * Node raises its soft open-file limit to the hard limit at start-up; say what that gave, and
 * warn when it cannot hold max_connections (each Postfix smtpd process keeps one connection).
 */
function warnIfFewFileDescriptors(config: Config, logger: ReturnType<typeof createLogger>): void {
  let limit: number | undefined;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((row) => row.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    limit = soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return; // not Linux: nothing to read
  }
  if (limit === undefined || Number.isNaN(limit)) return;
  // Policy connections, the metrics endpoint's (capped), and the daemon's own descriptors.
  const metricsConnections = config.metricsListen ? LIMITS.maxMetricsConnections : 0;
  const needed = config.maxConnections + metricsConnections + LIMITS.fileDescriptorReserve;
  if (limit < needed) {
    logger.warn(
      { open_file_limit: limit, needed, max_connections: config.maxConnections, metrics_connections: metricsConnections },
      'the open-file limit cannot hold max_connections: raise LimitNOFILE (systemd) or ulimit -n, or lower max_connections',
    );
  } else {
    logger.info({ open_file_limit: limit }, 'open-file limit');
  }
}

/** Look each target (an IP, or a host name and all its addresses) up exactly as the daemon would, and explain it. */
async function runCheck(targets: readonly string[], config: Config, options: { helo: string | undefined; json: boolean }, io: Output): Promise<number> {
  const resolver = createSystemResolver({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries });
  const dns = directLookups(resolver, queryDeadlineMs({ timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries }));
  const report = await checkTargets(targets, dns, config, options.helo);
  io.out(
    options.json
      ? renderJson(report, config, options.helo)
      : renderText(report, config, { color: io.isTerminal === true && !process.env.NO_COLOR }),
  );
  const { status } = report;
  return status === 'pass' ? EXIT.pass : status === 'temporary' ? EXIT.temporary : EXIT.permanent;
}
