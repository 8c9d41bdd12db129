/**
 * Config reading is bounded (issue 18): only a regular file (or a symlink to one) of at most
 * 1 MiB is read — a FIFO, device or directory is refused at once, at start-up (exit 78) and on
 * SIGHUP (reload failed, the old config stays); a byte-order mark is skipped; `::ffff:a.b.c.d/N`
 * in a network list is the IPv4 network it names.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/config.js';
import { readConfigFile } from '../../src/cli/cli.js';
import { inNetworks, parseClientIp } from '../../src/util/ip.js';
import { BUNDLE, BUNDLE_NODE, bundleMissing, startBundle } from '../helpers/bundle.js';
import { PolicyClient } from '../helpers/policy-client.js';

const dir = mkdtempSync(join(tmpdir(), 'fcrdns-config-files-'));
const problemsOf = (run: () => unknown): readonly string[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

t.test('only a regular file of at most 1 MiB is read', async (t) => {
  const good = join(dir, 'good.conf');
  writeFileSync(good, 'mode = strict\n');
  t.equal(readConfigFile(good), 'mode = strict\n');
  const link = join(dir, 'link.conf');
  symlinkSync(good, link);
  t.equal(readConfigFile(link), 'mode = strict\n', 'a symlink to a regular file is followed');
  const fifo = join(dir, 'fifo.conf');
  execFileSync('mkfifo', [fifo]);
  t.match(problemsOf(() => readConfigFile(fifo)), [/fifo\.conf: is a FIFO, not a regular file/], 'a FIFO at once, without waiting for a writer');
  t.match(problemsOf(() => readConfigFile('/dev/zero')), [/^\/dev\/zero: is a character device, not a regular file/]);
  t.match(problemsOf(() => readConfigFile(dir)), [/is a directory, not a regular file/]);
  const big = join(dir, 'big.conf');
  writeFileSync(big, `# ${'x'.repeat(1024 * 1024)}\n`);
  t.match(problemsOf(() => readConfigFile(big)), [/big\.conf: is over 1 MiB/]);
  t.match(problemsOf(() => readConfigFile(join(dir, 'missing.conf'))), [/missing\.conf: cannot read: ENOENT/]);
});

t.test('a UTF-8 byte-order mark is skipped', async (t) => {
  t.equal(parseConfig('\uFEFFmode = strict\n', 'bom.conf').mode, 'strict');
  const file = join(dir, 'bom.conf');
  writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('mode = soft\n')]));
  t.equal(parseConfig(readConfigFile(file), file).mode, 'soft');
});

t.test('::ffff:a.b.c.d/N in skip_networks and listen_allow is the IPv4 network a.b.c.d/(N-96)', async (t) => {
  const config = parseConfig('skip_networks = ::ffff:198.51.100.0/120\nlisten_allow = ::ffff:127.0.0.0/104, ::1\n', 'mapped.conf');
  t.ok(inNetworks(parseClientIp('198.51.100.7')!, config.skipNetworks), 'an IPv4 client in skip_networks');
  t.ok(inNetworks(parseClientIp('::ffff:198.51.100.7')!, config.skipNetworks), 'written IPv4-mapped too');
  t.notOk(inNetworks(parseClientIp('198.51.101.7')!, config.skipNetworks), 'outside the /24');
  t.notOk(inNetworks(parseClientIp('::198.51.100.7')!, config.skipNetworks), 'the IPv4-compatible IPv6 address is another client');
  t.ok(inNetworks(parseClientIp('127.0.0.9')!, config.listenAllow), 'listen_allow the same way');
});

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`CONFIG FILE BUNDLE TESTS SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test('start-up with --config /dev/zero or a FIFO exits 78 with a clear error, at once', async (t) => {
    const fifo = join(dir, 'start-fifo.conf');
    execFileSync('mkfifo', [fifo]);
    for (const path of ['/dev/zero', fifo, dir]) {
      const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(BUNDLE_NODE, ['--max-old-space-size=96', BUNDLE, '--config', path], { timeout: 10_000 }, (error, _stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stderr }),
        );
      });
      t.equal(result.code, 78, `${path}: exit 78`);
      t.match(result.stderr, /not a regular file/, `${path}: says why`);
    }
  });

  t.test('SIGHUP with the config path turned into a FIFO or /dev/zero: reload failed, answers go on', async (t) => {
    const daemon = await startBundle('listen = 127.0.0.1:0\nskip_networks = ::ffff:127.0.0.0/104\n');
    t.teardown(() => daemon.stop());
    const client = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => client.close());
    t.equal(await client.ask({ client_address: '127.0.0.5' }), 'DUNNO');
    const { rmSync } = await import('node:fs');
    for (const make of [() => execFileSync('mkfifo', [daemon.configPath]), () => symlinkSync('/dev/zero', daemon.configPath)]) {
      rmSync(daemon.configPath);
      make();
      const from = daemon.lines.length;
      daemon.child.kill('SIGHUP');
      const line = await daemon.waitFor((l) => String(l.msg).startsWith('reload failed'), 5_000, from);
      t.match(line, { problems: [/not a regular file/] });
      t.equal(await client.ask({ client_address: '127.0.0.5' }), 'DUNNO', 'still answering with the old config');
    }
    const skipped = daemon.lines.find((l) => l.msg === 'decision' && l.client_address === '127.0.0.5');
    t.match(skipped, { result: 'skipped', reason: 'skip_network' }, '::ffff:127.0.0.0/104 matched the IPv4 client');
  });
}
