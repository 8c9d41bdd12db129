/**
 * Reload refuses a broken file (issue 24, item 8), on the real daemon with SIGHUP: an empty file,
 * a file of comments only, a file cut mid-line (no final newline) and a network with host bits
 * set each log `reload failed` naming why, and the running configuration answers as before.
 * A good reload logs old -> new for each changed key: warn for the policy, resolver and
 * networks, info for the rest.
 */
import t from 'tap';
import { unfinishedFileProblem } from '../../src/config/reload.js';
import { whenAvailable } from '../helpers/requirements.js';
import { bundleMissing, startBundle, type LogLine } from '../helpers/bundle.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { ZONES } from '../helpers/zones.js';

t.test('unfinishedFileProblem: empty, no setting, no final newline', async (t) => {
  t.match(unfinishedFileProblem('', 'a.conf'), /^a\.conf: is empty/);
  t.match(unfinishedFileProblem('\uFEFF \n\n\t\n', 'a.conf'), /^a\.conf: is empty/);
  t.match(unfinishedFileProblem('# mode = strict\n\n   # indented comment\n', 'a.conf'), /^a\.conf: has no setting/);
  t.match(unfinishedFileProblem('mode = strict\nskip_networks = 192.0.2.128/2', 'a.conf'), /^a\.conf:2: the last line does not end in a newline/);
  t.equal(unfinishedFileProblem('mode = strict\n', 'a.conf'), undefined);
  t.equal(unfinishedFileProblem('mode = strict\r\n', 'a.conf'), undefined, 'CRLF ends in a newline too');
  t.equal(unfinishedFileProblem('# comment\nmode = strict\n  # trailing comment\n', 'a.conf'), undefined);
});

await whenAvailable(knotMissing() ?? bundleMissing(), 'reload tests', main);

async function main(): Promise<void> {
  const knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const base = `listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nskip_networks =\n`;
  // 192.0.2.13's PTR name resolves to another address: a mismatch (test/helpers/zones.ts).
  const monitorReply = 'WARN fcrdns-policyd mismatch: cannot find your hostname, [192.0.2.13]';

  await t.test('each broken file is refused with its reason; the running config still answers', async (t) => {
    const daemon = await startBundle(`${base}mode = monitor\n`);
    t.teardown(() => daemon.stop());
    const ask = async (): Promise<string> => {
      const client = await PolicyClient.connect({ port: daemon.port });
      try {
        return await client.ask({ client_address: '192.0.2.13' });
      } finally {
        client.close();
      }
    };
    t.equal(await ask(), monitorReply, 'monitor before any reload');
    const cases: Array<[string, string, RegExp]> = [
      ['an empty file', '', /fcrdns-policyd\.conf: is empty/],
      ['a file of comments only', '# mode = strict\n#\n\n', /fcrdns-policyd\.conf: has no setting/],
      ['a file cut mid-line', `${base}mode = monitor\nskip_networks = 192.0.2.128/2`.replace('skip_networks =\n', ''), /fcrdns-policyd\.conf:\d+: the last line does not end in a newline/],
      ['a network with host bits set', `${base.replace('skip_networks =\n', '')}mode = strict\nskip_networks = 192.0.2.128/2\n`, /fcrdns-policyd\.conf:6: skip_networks: invalid value "192\.0\.2\.128\/2": .*host bits set: write the network 192\.0\.0\.0\/2/],
    ];
    for (const [what, text, why] of cases) {
      const line = await daemon.reload(text);
      t.match(line, { msg: /^reload failed/, level: 'error' }, `${what}: reload failed`);
      t.match((line.problems as string[] | undefined)?.join('\n') ?? '', why, `${what}: the reason is named`);
      t.equal(await ask(), monitorReply, `${what}: still answered per the running config (monitor)`);
    }
    t.notOk(daemon.lines.some((l) => l.msg === 'reloaded'), 'no reload took effect');
  });

  await t.test('a good reload logs old -> new per changed key: warn for policy, resolver and networks', async (t) => {
    const daemon = await startBundle(`${base}mode = monitor\ncache_size = 50000\n`);
    t.teardown(() => daemon.stop());
    const from = daemon.lines.length;
    const next = `${base.replace('dns_timeout = 1s', 'dns_timeout = 2s').replace('skip_networks =\n', 'skip_networks = 198.51.100.0/24\n')}mode = strict\ncache_size = 60000\nreply_hint = see https://example.org/rdns\n`;
    t.match(await daemon.reload(next), { msg: 'reloaded' });
    const changes = daemon.lines.slice(from).filter((l) => typeof l.key === 'string' && String(l.msg).startsWith('reload changes'));
    const byKey = new Map<string, LogLine>(changes.map((l) => [String(l.key), l]));
    t.match(byKey.get('mode'), { level: 'warn', old: 'monitor', new: 'strict' }, 'mode: warn');
    t.match(byKey.get('no_ptr_action'), { level: 'warn', old: 'warn', new: 'reject' }, 'an action the preset changed: warn');
    t.match(byKey.get('dns_timeout'), { level: 'warn', old: '1s', new: '2s' }, 'resolver: warn');
    t.match(byKey.get('skip_networks'), { level: 'warn', old: '', new: '198.51.100.0/24' }, 'network list: warn');
    t.match(byKey.get('cache_size'), { level: 'info', old: '50000', new: '60000' }, 'cache_size: info');
    t.match(byKey.get('reply_hint'), { level: 'info', old: '', new: 'see https://example.org/rdns' }, 'reply_hint: info');
    t.notOk(byKey.has('listen'), 'an unchanged key is not logged');
    t.equal(changes.length, new Set(changes.map((l) => l.key)).size, 'one line per changed key');
  });
}
