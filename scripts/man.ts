/**
 * The manual pages, generated: fcrdns-policyd(8) (commands, options, signals, exit status,
 * files) and fcrdns-policyd.conf(5) (every key, from the key table the code validates with:
 * KEY_DOCS and the defaults in src/config/config.ts). Written to dist/man/; checked with
 * `mandoc -T lint` in test/artefacts/package.test.ts. Usage: tsx scripts/man.ts [OUTDIR]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_KEYS, defaultValues, KEY_DOCS } from '../src/config/config.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

/** The page date: SOURCE_DATE_EPOCH (reproducible builds), else the last commit's, else today. */
function pageDate(): string {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch) return new Date(Number(epoch) * 1000).toISOString().slice(0, 10);
  try {
    return execFileSync('git', ['log', '-1', '--format=%cs'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || today();
  } catch {
    return today();
  }
}
const today = () => new Date().toISOString().slice(0, 10);

/** Text for roff: backslashes doubled, hyphens as \-, and a line must not start with . or '. */
export function roff(text: string): string {
  const escaped = text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  return escaped.replace(/^([.'])/gm, '\\&$1');
}

/** Text lines wrapped at 78 bytes on spaces (mandoc -T lint: input lines of at most 80). */
function wrapped(lines: readonly string[]): string {
  const out: string[] = [];
  for (const line of lines) {
    if (line.startsWith('.') || line.length <= 78) {
      out.push(line);
      continue;
    }
    let rest = line;
    while (rest.length > 78) {
      const at = rest.lastIndexOf(' ', 78);
      if (at <= 0) break;
      out.push(rest.slice(0, at));
      rest = rest.slice(at + 1);
    }
    out.push(rest);
  }
  return `${out.join('\n')}\n`;
}

export function confPage(date = pageDate()): string {
  const defaults = defaultValues();
  const lines = [
    `.TH FCRDNS\\-POLICYD.CONF 5 ${date} "fcrdns\\-policyd ${version}" "File Formats Manual"`,
    '.SH NAME',
    'fcrdns\\-policyd.conf \\- configuration of the fcrdns\\-policyd Postfix policy server',
    '.SH SYNOPSIS',
    '.B /etc/fcrdns\\-policyd/fcrdns\\-policyd.conf',
    '.SH DESCRIPTION',
    'The file is written as Postfix writes',
    '.BR main.cf :',
    '.IR name " = " value ;',
    'lines starting with',
    '.B #',
    'are comments; a line starting with whitespace continues the previous value; lists are',
    'separated by commas and/or whitespace; durations are written as Postfix writes them',
    '.RB ( 30s ", " 5m ", " 1h ", " 2d ", " 1w ;',
    'a bare number is seconds).',
    'An unknown key, a key set twice or a bad value is an error naming the file, the line, the',
    'key and what is allowed, with the nearest known key for a typo. Nothing is silently ignored.',
    '.PP',
    'The file must be a regular file of at most 1 MiB.',
    'Check a change with',
    '.B fcrdns\\-policyd config \\-\\-config',
    '.I FILE',
    'and apply it with',
    '.B systemctl reload fcrdns\\-policyd',
    '(SIGHUP; a bad file is reported and the old configuration stays).',
    '.SH KEYS',
    'Every key has a default.',
  ];
  for (const key of CONFIG_KEYS) {
    const doc = KEY_DOCS[key];
    const fallback = defaults[key] === '' ? 'empty' : defaults[key];
    lines.push('.TP', `.B ${roff(key)}`, `${roff(doc.meaning)}`, '.br', `Values: ${roff(doc.values)}.`, '.br', `Default: ${roff(doc.defaultText ?? fallback)}.`);
  }
  lines.push(
    '.SH EXAMPLES',
    'A rollout starts in monitor mode and tightens once the log says it is safe:',
    '.PP',
    '.EX',
    'mode = monitor',
    'dns_servers = 127.0.0.1',
    'reply_hint = see https://example.org/rdns',
    '.EE',
    '.SH FILES',
    '.TP',
    '.B /etc/fcrdns\\-policyd/fcrdns\\-policyd.conf',
    'read at start and on SIGHUP; without it the daemon runs on the built\\-in defaults.',
    '.SH SEE ALSO',
    '.BR fcrdns\\-policyd (8),',
    '.BR postconf (5)',
  );
  return wrapped(lines);
}

/** The synopsis of the log commands' common part: files, the time window, the list length. */
const LOG_OPTIONS = ['.RI [ FILE ...]', '.RB [ \\-\\-since', '.IR WHEN ]', '.RB [ \\-\\-until', '.IR WHEN ]', '.RB [ \\-\\-top', '.IR N ]', '.RB [ \\-\\-tag', '.IR NAME ]'];

export function commandPage(date = pageDate()): string {
  const lines = [
    `.TH FCRDNS\\-POLICYD 8 ${date} "fcrdns\\-policyd ${version}" "System Manager's Manual"`,
    '.SH NAME',
    'fcrdns\\-policyd \\- forward\\-confirmed reverse DNS policy server for Postfix',
    '.SH SYNOPSIS',
    '.B fcrdns\\-policyd',
    '.RB [ \\-\\-config',
    '.IR FILE ]',
    '.br',
    '.B fcrdns\\-policyd check',
    '.IR IP | HOST ...',
    '.RB [ \\-\\-helo',
    '.IR NAME ]',
    '.RB [ \\-\\-config',
    '.IR FILE ]',
    '.RB [ \\-\\-json ]',
    '.br',
    '.B fcrdns\\-policyd config',
    '.RB [ \\-\\-config',
    '.IR FILE ]',
    '.br',
    '.B fcrdns\\-policyd report',
    ...LOG_OPTIONS,
    '.RB [ \\-\\-ascii ]',
    '.RB [ \\-\\-json ]',
    '.br',
    '.B fcrdns\\-policyd replay \\-\\-config',
    '.I NEW.conf',
    ...LOG_OPTIONS,
    '.RB [ \\-\\-json ]',
    '.br',
    '.B fcrdns\\-policyd query',
    '.RB [ \\-\\-config',
    '.IR FILE ]',
    '.BI client_address= IP',
    '.RI [ NAME = VALUE ...]',
    '.br',
    '.B fcrdns\\-policyd',
    '.BR \\-\\-version " | " \\-\\-help',
    '.SH DESCRIPTION',
    '.B fcrdns\\-policyd',
    'is a Postfix policy delegation server (SMTPD_POLICY_README).',
    'For each client it looks up the PTR names of the client IP and their A or AAAA records,',
    'classifies the client in RFC 8601 iprev terms',
    '.RB ( pass ", " no_ptr ", " no_forward ", " mismatch ", " temperror ),',
    'and answers DUNNO, WARN, 450 4.7.25 or 550 5.7.25 according to',
    '.BR fcrdns\\-policyd.conf (5).',
    'It writes one JSON line per decision on standard output.',
    'It is wired into Postfix with',
    '.B check_policy_service',
    'in',
    '.BR smtpd_recipient_restrictions .',
    '.SH COMMANDS',
    '.TP',
    '.B (none)',
    'Run the daemon in the foreground.',
    '.TP',
    '.B check',
    'Look clients up the way the daemon would (a host name: each of its A and AAAA addresses) and',
    'explain the verdict: each PTR name, each forward lookup, the result, the action the',
    'configuration would take, and what the sender\'s operator must fix.',
    '.TP',
    '.B config',
    'Validate the configuration and print every effective setting, as',
    '.B postconf',
    'does.',
    '.TP',
    '.B report',
    'Read the decision log (files, plain or gzip\\-compressed, or standard input) and show actions,',
    'results, a chart per hour, the failing clients, domains and HELO names, resolver trouble,',
    'durations, and what soft and strict mode would have answered.',
    '.TP',
    '.B replay',
    'Re\\-decide every logged request under',
    '.I NEW.conf',
    'without any DNS query, and show what would change.',
    '.TP',
    '.B query',
    'Send one policy request to the running daemon, at the listen address of the configuration,',
    'the way Postfix does (request, protocol_state=RCPT and the given',
    '.IR NAME = VALUE',
    'attributes), and print its answer',
    '.RB ( action=... ).',
    'For a first request, scripts and health checks: no netcat needed, unix sockets work too.',
    'Exit 0 answered, 69 no answer (not running, refused, or closed without a reply), 75 timeout.',
    '.SH OPTIONS',
    '.TP',
    '.BR \\-c ", " \\-\\-config " " \\fIFILE\\fR',
    'The configuration file; default',
    '.IR /etc/fcrdns\\-policyd/fcrdns\\-policyd.conf',
    'if it exists, else the built\\-in defaults.',
    '.TP',
    '.BI \\-\\-helo " NAME"',
    '(check) The HELO name to judge too.',
    '.TP',
    '.B \\-\\-json',
    '(check, report, replay) One JSON document instead of text, schema 1.',
    '.TP',
    '.BI \\-\\-since " WHEN" "\\fR, \\fP\\-\\-until" " WHEN"',
    '(report, replay) Only lines from, or before, WHEN: a date (2026\\-11\\-30,',
    '2026\\-11\\-30T06:00:00Z) or a time ago (90m, 24h, 7d, 2w).',
    '.TP',
    '.BI \\-\\-top " N"',
    '(report, replay) Length of the top lists; default 10.',
    '.TP',
    '.B \\-\\-ascii',
    '(report) Draw the chart in plain ASCII.',
    '.TP',
    '.BI \\-\\-tag " NAME"',
    '(report, replay) The syslog tag of the daemon\\(aqs lines in syslog or journal output; default',
    '.BR fcrdns\\-policyd .',
    'Lines with another tag are counted apart and never read as decisions.',
    '.TP',
    '.BR \\-V ", " \\-\\-version',
    'Print the version.',
    '.TP',
    '.BR \\-h ", " \\-\\-help',
    'Print the usage.',
    '.SH SIGNALS',
    '.TP',
    '.B SIGHUP',
    'Re\\-read the configuration file; a bad file is logged',
    '.RB ( "reload failed" )',
    'and the old configuration stays. Listen addresses change on restart only.',
    '.TP',
    '.BR SIGTERM ", " SIGINT',
    'Stop accepting, answer the requests in flight, exit 0.',
    '.SH EXIT STATUS',
    '.TP',
    '.B 0',
    'Success; check: every client passes.',
    '.TP',
    '.B 1',
    'check: a permanent failure; report, replay: no decision line found in the input.',
    '.TP',
    '.B 2',
    'check: only temporary failures.',
    '.TP',
    '.B 64',
    'Usage error.',
    '.TP',
    '.B 70',
    'The daemon could not start (the listen address in use), or an internal error.',
    '.TP',
    '.B 78',
    'Configuration error (file, line, key and what is allowed are printed).',
    '.SH ENVIRONMENT',
    '.TP',
    '.B NO_COLOR',
    'check prints no colour even on a terminal.',
    '.SH FILES',
    '.TP',
    '.I /etc/fcrdns\\-policyd/fcrdns\\-policyd.conf',
    'The configuration, see',
    '.BR fcrdns\\-policyd.conf (5).',
    '.TP',
    '.I /usr/lib/systemd/system/fcrdns\\-policyd.service',
    'The hardened systemd unit; logs go to the journal:',
    '.BR "journalctl \\-u fcrdns\\-policyd \\-o cat" .',
    '.TP',
    '.I /usr/lib/fcrdns\\-policyd/fcrdns\\-policyd.js',
    'The program, run by node with a capped heap from',
    '.IR /usr/sbin/fcrdns\\-policyd .',
    '.SH EXAMPLES',
    'In Postfix',
    '.BR main.cf :',
    '.PP',
    '.EX',
    'smtpd_recipient_restrictions =',
    '    permit_mynetworks, permit_sasl_authenticated,',
    '    reject_unauth_destination,',
    '    check_policy_service { inet:127.0.0.1:10040, default_action=DUNNO }',
    '.EE',
    '.PP',
    'What strict mode would have done to last week\'s mail:',
    '.PP',
    '.EX',
    'journalctl \\-u fcrdns\\-policyd \\-o cat \\-\\-since \\-7d | fcrdns\\-policyd report',
    '.EE',
    '.SH SEE ALSO',
    '.BR fcrdns\\-policyd.conf (5),',
    '.BR postconf (5),',
    '.BR journalctl (1)',
  ];
  return wrapped(lines);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(root, 'dist', 'man');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'fcrdns-policyd.8'), commandPage());
  writeFileSync(join(out, 'fcrdns-policyd.conf.5'), confPage());
}
