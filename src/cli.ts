/**
 * Process concerns only: argv, the config file on disk, signals, exit codes, and the `check`
 * and `config` commands. Everything else lives in the modules it wires.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_CONFIG_PATH, defaultConfig, formatEffective, parseConfig, type Config } from './config.js';
import { startDaemon } from './daemon.js';
import { createSystemResolver, directLookups, queryDeadlineMs } from './dns.js';
import { parseClientIp, type ClientIp } from './ip.js';
import { lookupIprev, normaliseName, type IprevResult } from './iprev.js';
import { createLogger, flushLogger } from './log.js';
import { decide, findExemption } from './policy.js';

declare const FCRDNS_VERSION: string | undefined;
export const VERSION = typeof FCRDNS_VERSION === 'string' ? FCRDNS_VERSION : '0.0.0-dev';

/** sysexits(3): EX_USAGE and EX_CONFIG; SPEC: 64+ for usage and config errors. */
export const EXIT = { pass: 0, permanent: 1, temporary: 2, usage: 64, config: 78, software: 70 } as const;

const USAGE = `Usage:
  fcrdns-policyd [--config FILE]            run the policy daemon (JSON logs on stdout)
  fcrdns-policyd check IP [--helo NAME] [--config FILE] [--json]
                                            look one client up and explain the verdict
  fcrdns-policyd config [--config FILE]     validate the config and print every setting
  fcrdns-policyd --version | --help

Without --config, ${DEFAULT_CONFIG_PATH} is read if it exists, else built-in defaults apply.
Exit status of check: 0 pass, 1 permanent failure, 2 temporary failure, 64+ usage/config error.`;

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const stdio: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Load the config: the named file, else the default path if present, else built-in defaults. */
export function loadConfig(path: string | undefined): Config {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (file === undefined) return defaultConfig();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  return parseConfig(text, file);
}

/** Entry point; resolves to the exit status for one-shot commands, or never for the daemon. */
export async function main(argv: string[], io: Output = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        helo: { type: 'string' },
        json: { type: 'boolean' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.err(`fcrdns-policyd: ${(error as Error).message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(`${USAGE}\n`);
    return EXIT.pass;
  }
  if (values.version) {
    io.out(`fcrdns-policyd ${VERSION}\n`);
    return EXIT.pass;
  }
  const [command, ...rest] = positionals;
  const onlyFor = (name: string, allowed: boolean, flag: unknown): string | undefined =>
    flag !== undefined && !allowed ? `--${name} only goes with "check"` : undefined;
  const misuse =
    onlyFor('helo', command === 'check', values.helo) ?? onlyFor('json', command === 'check', values.json);
  if (misuse) {
    io.err(`fcrdns-policyd: ${misuse}\n\n${USAGE}\n`);
    return EXIT.usage;
  }

  let config: Config;
  try {
    config = loadConfig(values.config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`${error.problems.join('\n')}\n`);
    return EXIT.config;
  }

  switch (command) {
    case undefined:
      return runDaemon(config, values.config);
    case 'config':
      if (rest.length > 0) {
        io.err(`fcrdns-policyd: "config" takes no arguments\n\n${USAGE}\n`);
        return EXIT.usage;
      }
      io.out(formatEffective(config));
      return EXIT.pass;
    case 'check': {
      if (rest.length !== 1) {
        io.err(`fcrdns-policyd: "check" takes one IP address\n\n${USAGE}\n`);
        return EXIT.usage;
      }
      const ip = parseClientIp(rest[0] ?? '');
      if (!ip) {
        io.err(`fcrdns-policyd: not an IP address: ${JSON.stringify(rest[0] ?? '')}\n`);
        return EXIT.usage;
      }
      return runCheck(ip, config, { helo: values.helo, json: values.json === true }, io);
    }
    default:
      io.err(`fcrdns-policyd: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
      return EXIT.usage;
  }
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
  process.on('SIGHUP', () => {
    try {
      running.reload(loadConfig(configPath));
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [String(error)];
      logger.error({ problems }, 'reload failed; keeping the previous configuration');
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

interface CheckOptions {
  helo: string | undefined;
  json: boolean;
}

/** What the sender's operator must change, for each result. */
function adviceFor(ip: ClientIp, result: IprevResult): string[] {
  const recordType = ip.family === 4 ? 'A' : 'AAAA';
  switch (result.result) {
    case 'pass':
      return ['Nothing to fix: the PTR name resolves back to this address.'];
    case 'no_ptr':
      return [
        `There is no usable PTR record for ${ip.text} (${result.reverseName}).`,
        `The PTR is set by whoever owns the IP address - your hosting provider or ISP - not at your domain's DNS host. ` +
          `Ask them to set the PTR of ${ip.text} to your mail server's name (e.g. the name in Postfix's myhostname), ` +
          `and make sure that name has an ${recordType} record pointing to ${ip.text}.`,
        ...(result.ptr.ignored.length > 0
          ? [`The PTR names present are not valid hostnames: ${result.ptr.ignored.map((item) => item.name).join(', ')}.`]
          : []),
      ];
    case 'no_forward':
      return [
        `The PTR name(s) ${result.ptr.names.join(', ')} have no ${recordType} record.`,
        `Add an ${recordType} record for ${result.ptr.names[0] ?? 'the name'} pointing to ${ip.text} at the DNS host of that domain.`,
      ];
    case 'mismatch':
      return [
        `The PTR name(s) resolve, but not to ${ip.text}: ` +
          result.forward.map((check) => `${check.name} -> ${check.addresses.join(', ') || 'nothing'}`).join('; ') +
          '.',
        `Add ${ip.text} to the ${recordType} records of ${result.ptr.names[0] ?? 'the name'}, or have the IP's owner change the PTR to a name that resolves to ${ip.text}.`,
      ];
    case 'temperror':
      return [
        result.temperrorStage === 'ptr'
          ? `The PTR lookup of ${result.reverseName} failed temporarily (${result.ptr.code ?? 'error'}).`
          : `Forward lookups failed temporarily: ${result.forward
              .filter((check) => check.outcome === 'temporary')
              .map((check) => `${check.name} (${check.code ?? 'error'})`)
              .join(', ')}.`,
        'Retry later. If it persists, check that the authoritative servers of the zone answer, and that this resolver works.',
      ];
  }
}

/** Look one client up exactly as the daemon would (same resolver settings, same policy) and explain it. */
async function runCheck(ip: ClientIp, config: Config, options: CheckOptions, io: Output): Promise<number> {
  const resolver = createSystemResolver({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries });
  const dns = directLookups(resolver, queryDeadlineMs({ timeoutMs: config.dnsTimeoutMs, tries: config.dnsTries }));
  const result = await lookupIprev(ip, dns, config.maxPtrNames);
  const verdict = decide(result, ip, { check: config.check, mode: config.mode, overrides: config.overrides, replyHint: config.replyHint });
  const exemption = findExemption({ client: ip, recipient: '', saslUsername: '' }, config);
  const helo = options.helo === undefined ? undefined : normaliseName(options.helo);
  const heloConfirmed = helo === undefined ? undefined : result.confirmedNames.includes(helo);
  const advice = adviceFor(ip, result);
  if (helo !== undefined && !heloConfirmed && result.result === 'pass') {
    advice.push(
      `The HELO name ${helo} is not a forward-confirmed PTR name of ${ip.text}; set the MTA's hostname ` +
        `(Postfix: myhostname) to ${result.confirmedNames[0] ?? 'the PTR name'}.`,
    );
  }
  const status = result.result === 'pass' ? EXIT.pass : result.result === 'temperror' ? EXIT.temporary : EXIT.permanent;

  if (options.json) {
    io.out(
      `${JSON.stringify(
        {
          ip: ip.text,
          reverse_name: result.reverseName,
          ptr: result.ptr,
          forward: result.forward,
          result: result.result,
          ...(result.temperrorStage ? { temperror_stage: result.temperrorStage } : {}),
          confirmed_names: result.confirmedNames,
          ...(helo !== undefined ? { helo: { name: helo, confirmed: heloConfirmed } } : {}),
          check: config.check,
          mode: config.mode,
          action: exemption ? 'dunno' : verdict.action,
          reply: exemption ? 'DUNNO' : verdict.reply,
          ...(exemption ? { skipped: exemption } : {}),
          advice,
        },
        null,
        2,
      )}\n`,
    );
    return status;
  }

  const recordType = ip.family === 4 ? 'A' : 'AAAA';
  const lines: string[] = [];
  lines.push(`Client ${ip.text} (config: ${config.source}; check=${config.check}, mode=${config.mode})`, '');
  lines.push(`PTR ${result.reverseName}`);
  if (result.ptr.outcome === 'answer') {
    for (const name of result.ptr.names) lines.push(`  ${name}`);
    for (const item of result.ptr.ignored) lines.push(`  ${JSON.stringify(item.name)} ignored: ${item.reason}`);
  } else {
    lines.push(`  ${result.ptr.outcome === 'not_found' ? 'no PTR record' : 'lookup failed temporarily'} (${result.ptr.code ?? ''})`);
  }
  for (const check of result.forward) {
    lines.push(`${recordType} ${check.name}`);
    if (check.outcome === 'answer') {
      for (const address of check.addresses) lines.push(`  ${address}${address === ip.text ? '  <- matches the client' : ''}`);
      if (check.addresses.length === 0) lines.push(`  no ${recordType} record`);
    } else {
      lines.push(`  ${check.outcome === 'not_found' ? `no ${recordType} record` : 'lookup failed temporarily'} (${check.code ?? ''})`);
    }
  }
  lines.push('');
  lines.push(`Result:  ${result.result}${result.temperrorStage ? ` (${result.temperrorStage} lookup)` : ''}`);
  if (result.confirmedNames.length > 0) lines.push(`Confirmed name: ${result.confirmedNames.join(', ')}`);
  if (helo !== undefined) lines.push(`HELO ${helo}: ${heloConfirmed ? 'matches a confirmed name' : 'does not match a confirmed name'}`);
  if (exemption) {
    lines.push(`Action:  DUNNO (the daemon skips this client: ${exemption})`);
  } else {
    lines.push(`Action:  ${verdict.action} -> action=${verdict.reply}`);
  }
  lines.push('', 'What to fix:', ...advice.map((line) => `  - ${line}`));
  io.out(`${lines.join('\n')}\n`);
  return status;
}
