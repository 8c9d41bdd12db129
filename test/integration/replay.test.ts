/**
 * replay answers exactly what a daemon running NEW.conf answers: one daemon per configuration
 * (the bundle, over the same real Knot zones and the same traffic), then every daemon's log
 * replayed under every other daemon's configuration and compared request by request. The only
 * lines allowed to be "not replayable" are those whose input the logging daemon never had (a
 * HELO name it did not look up, a request it exempted), and each must say so.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { parseLogLine, type DecisionRecord, type ReuseRecord } from '../../src/reports/decision-record.js';
import { Replayer, type NotReplayable } from '../../src/reports/replay.js';
import { BUNDLE, bundleMissing, startBundle, type LogLine } from '../helpers/bundle.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { whenAvailable } from '../helpers/requirements.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { ZONES } from '../helpers/zones.js';

const run = promisify(execFile);

/** The settings under test: every preset, and each setting the issue names, off and on. */
const CONFIGS: Record<string, string> = {
  'fcrdns-monitor': 'check = fcrdns\nmode = monitor\n',
  'fcrdns-soft': 'check = fcrdns\nmode = soft\n',
  'fcrdns-strict': 'check = fcrdns\nmode = strict\n',
  'reverse-monitor': 'check = reverse\nmode = monitor\n',
  'reverse-soft': 'check = reverse\nmode = soft\n',
  'reverse-strict': 'check = reverse\nmode = strict\n',
  'generic-reject': 'mode = strict\ngeneric_action = reject\n',
  'generic-aggressive': 'mode = soft\ngeneric_action = defer\ngeneric_level = aggressive\n',
  'helo-warn': 'mode = soft\nhelo_mismatch_action = warn\n',
  'helo-reject': 'mode = strict\nhelo_mismatch_action = reject\n',
  'pass-names': 'mode = strict\npass_names = mismatch.example.com, .dyn.example.com, noforward.example.com\n',
  'pass-recipients': 'mode = strict\npass_recipients = bob\n',
  'skip-networks': 'mode = strict\nskip_networks = 192.0.2.10/32, 192.0.2.11/32, 198.51.100.0/24\n',
  'no-skip-authenticated': 'mode = strict\nskip_authenticated = no\n',
  overrides: 'mode = strict\nno_ptr_action = defer\nmismatch_action = warn\ntemperror_action = dunno\nno_forward_action = warn\n',
  authres: 'mode = soft\nauthres_header = yes\nauthserv_id = mx.example.org\n',
};

const CLIENTS = [
  '192.0.2.10', '2001:db8::25', '192.0.2.11', '2001:db8::26', '192.0.2.12', '2001:db8::27', '192.0.2.13', '192.0.2.14',
  '192.0.2.15', '192.0.2.16', '::ffff:192.0.2.10', '192.0.2.17', '2001:db8::17', '192.0.2.19', '198.51.100.1', '192.0.2.18',
  '192.0.2.42', '192.0.2.43',
];
const literal = (ip: string) => (ip.includes(':') && !ip.startsWith('::ffff:') ? `[IPv6:${ip}]` : `[${ip.replace('::ffff:', '')}]`);
const HELOS = (ip: string) => ['mail.example.com', literal(ip), '[192.0.2.200]', 'bad_name!', '', 'nothing.example.com', 'dual.example.com', '\u001b[2J\u0007evil.example.com'];
const RECIPIENTS = [['bob@example.org'], ['postmaster@example.org', 'bob@example.org'], ['carol@example.org', 'abuse@example.org', 'bob@example.org']];

/** Every request of the traffic, in order: each client greets with each HELO name, in messages of 1–3 recipients. */
function traffic(): Array<Record<string, string>> {
  const requests: Array<Record<string, string>> = [];
  CLIENTS.forEach((client, k) => {
    HELOS(client).forEach((helo, j) => {
      const recipients = RECIPIENTS[(k + j) % RECIPIENTS.length] ?? [];
      const authenticated = (k + j) % 7 === 3;
      for (const recipient of recipients) {
        requests.push({ client_address: client, helo_name: helo, instance: `m${k}.${j}`, recipient, sasl_username: authenticated ? 'alice' : '' });
      }
    });
  });
  return requests;
}

const actionOf = (reply: string): string =>
  reply.startsWith('DUNNO') || reply.startsWith('PREPEND') ? 'dunno' : reply.startsWith('WARN') ? 'warn' : reply.startsWith('450') ? 'defer' : reply.startsWith('550') ? 'reject' : `? ${reply}`;

await whenAvailable(knotMissing() ?? bundleMissing(), 'replay against real daemons', main);

async function main(): Promise<void> {
  const knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const base = `listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nskip_networks =\n`;
  const configText = (name: string) => {
    const settings = CONFIGS[name] ?? '';
    // skip_networks named by the config replaces the empty one of the base.
    return settings.includes('skip_networks') ? base.replace('skip_networks =\n', '') + settings : base + settings;
  };
  const requests = traffic();

  // One daemon per configuration, the same traffic to each, one connection, in order.
  const logs = new Map<string, LogLine[]>();
  const answers = new Map<string, string[]>();
  for (const name of Object.keys(CONFIGS)) {
    const daemon = await startBundle(configText(name));
    const client = await PolicyClient.connect({ port: daemon.port });
    const replies: string[] = [];
    for (const request of requests) replies.push(await client.ask(request));
    await client.close();
    await daemon.waitFor(() => daemon.lines.filter((line) => line.msg === 'decision' || line.msg === 'decision reused for another recipient').length === requests.length);
    await daemon.stop();
    answers.set(name, replies.map(actionOf));
    logs.set(name, [...daemon.lines]);
  }

  /** A log's request lines, read back as the replay command reads them. */
  const requestLines = (lines: LogLine[]): Array<DecisionRecord | ReuseRecord> =>
    lines
      .map((line) => parseLogLine(JSON.stringify(line)))
      .filter((line): line is DecisionRecord | ReuseRecord => line.kind === 'decision' || line.kind === 'reuse');

  await t.test('every log, replayed under every configuration, answers what that configuration’s daemon answered', async (t) => {
    let compared = 0;
    let changed = 0;
    const skipped = new Map<NotReplayable, number>();
    for (const [from, log] of logs) {
      const lines = requestLines(log);
      t.equal(lines.length, requests.length, `${from}: one request line per request`);
      for (const to of Object.keys(CONFIGS)) {
        const replayer = new Replayer(parseConfig(configText(to), `${to}.conf`));
        const expected = answers.get(to) ?? [];
        const before = parseConfig(configText(from), 'from');
        const after = parseConfig(configText(to), 'to');
        const heloNewlyUsed = before.heloMismatchAction === 'dunno' && after.heloMismatchAction !== 'dunno';
        const exemptionsDiffer =
          JSON.stringify([before.skipNetworks.map(String), before.passRecipients, before.skipAuthenticated]) !==
          JSON.stringify([after.skipNetworks.map(String), after.passRecipients, after.skipAuthenticated]);
        const differences: string[] = [];
        lines.forEach((line, i) => {
          const outcome = replayer.replay(line);
          if (!outcome.ok) {
            skipped.set(outcome.reason, (skipped.get(outcome.reason) ?? 0) + 1);
            const allowed = (outcome.reason === 'helo_not_looked_up' && heloNewlyUsed) || (outcome.reason === 'exempt_when_logged' && exemptionsDiffer);
            if (!allowed) differences.push(`request ${i} (${line.clientAddress}): not replayable (${outcome.reason})`);
            return;
          }
          compared++;
          if (outcome.decision.action !== line.action) changed++;
          if (outcome.decision.action !== expected[i]) {
            differences.push(`request ${i} (${line.clientAddress} ${JSON.stringify(requests[i])}): replay ${outcome.decision.action}, daemon ${expected[i]}`);
          }
        });
        t.same(differences, [], `${from} → ${to}`);
      }
    }
    t.ok(compared > 50_000, `${compared} requests compared`);
    t.ok(changed > 5_000, `${changed} of them change action across configurations`);
    t.comment(`not replayable, each for a reason the logging daemon could not know: ${JSON.stringify(Object.fromEntries(skipped))}`);
  });

  await t.test('the replay command: changes listed with input and line, none under the config that wrote the log; report reads the same log', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-replay-'));
    const soft = (logs.get('fcrdns-soft') ?? []).map((line) => JSON.stringify(line));
    // Other programs' lines, garbage and a cut-off last line are counted, not fatal.
    const text = [...soft.slice(0, 5), 'not json', '{"hello":"world"}', ...soft.slice(5), '{"level":"info","time":"2026-1'].join('\n');
    writeFileSync(join(dir, 'soft.log.gz'), gzipSync(text));
    writeFileSync(join(dir, 'strict.conf'), configText('fcrdns-strict'));
    writeFileSync(join(dir, 'soft.conf'), configText('fcrdns-soft'));
    const replay = async (config: string) =>
      JSON.parse((await run(process.execPath, [BUNDLE, 'replay', '--config', join(dir, config), '--json', join(dir, 'soft.log.gz')])).stdout) as {
        schema: number;
        changed: Array<{ input: string; line: number; client_address: string; before: { action: string }; after: { action: string; reply: string } }>;
        summary: { changed: number; bad_lines: Record<string, number>; not_replayable: Record<string, number> };
      };
    const same = await replay('soft.conf');
    t.equal(same.schema, 1);
    t.same(same.changed, [], 'replayed under the config that wrote it: no change');
    t.same(same.summary.bad_lines, { not_json: 1, foreign: 1, truncated: 1 });

    const strict = await replay('strict.conf');
    const expectedChanges = (answers.get('fcrdns-soft') ?? []).map((action, i) => [action, answers.get('fcrdns-strict')?.[i]] as const).filter(([a, b]) => a !== b).length;
    t.equal(strict.changed.length, expectedChanges, `${expectedChanges} requests change from soft to strict`);
    t.equal(strict.summary.changed, expectedChanges);
    const lines = text.split('\n');
    for (const change of strict.changed) {
      t.equal(change.input, join(dir, 'soft.log.gz'));
      t.match(lines[change.line - 1] ?? '', `"client_address":${JSON.stringify(change.client_address)}`, 'the line number points at the logged request');
      t.match(change, { before: { action: 'defer' }, after: { action: 'reject', reply: /^550 5\.7\.25 / } });
    }

    const report = JSON.parse((await run(process.execPath, [BUNDLE, 'report', '--json', join(dir, 'soft.log.gz')])).stdout) as {
      schema: number;
      messages: number;
      recipients: number;
      presets: Record<string, { changed: number }>;
    };
    t.equal(report.schema, 1);
    t.equal(report.recipients, requests.length, 'every request is a recipient');
    t.equal(report.messages, soft.filter((line) => line.includes('"msg":"decision"')).length, 'one message per decision line');
    t.equal(report.presets.strict?.changed, expectedChanges, "report's strict preset agrees with replay under strict");
    const textReport = (await run(process.execPath, [BUNDLE, 'report', join(dir, 'soft.log.gz')])).stdout;
    t.notMatch(textReport, /[\u0000-\u0008\u000b-\u001f\u007f]/, 'no control character from a HELO name reaches the terminal');
    t.match(textReport, /\\x1b\[2J\\x07evil\.example\.com/, 'the hostile HELO name is shown escaped');
  });
}
