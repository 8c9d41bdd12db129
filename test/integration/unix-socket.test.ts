/**
 * The unix socket path (issue 24, item 7): a second instance on the same path refuses to start
 * ("another fcrdns-policyd listens on PATH", exit 70) and leaves the first reachable; a stale
 * socket (its process gone) is taken over; and a daemon that stops removes the path only while it
 * is still the socket it bound, never a newer instance's.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { BUNDLE, bundleMissing, startBundle } from '../helpers/bundle.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { shippedNodeFlags } from '../helpers/shipped.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

const ZONES = { ptr: { '5.113.0.203.in-addr.arpa': ['mail.example.com'] }, a: { 'mail.example.com': ['203.0.113.5'] } };

async function asks(path: string): Promise<string> {
  const client = await PolicyClient.connect({ path });
  try {
    return await client.ask({ client_address: '203.0.113.5' });
  } finally {
    client.close();
  }
}

/** A daemon in this process on `path`; closed at teardown unless `t` is undefined (the test closes it). */
async function inProcess(t: { teardown(fn: () => unknown): void } | undefined, path: string) {
  const logger = createStreamLogger('info', { write: () => undefined });
  const daemon = await startDaemon({ config: parseConfig(`listen = unix:${path}\nmode = strict\n`, 'unix.conf'), logger, resolver: zoneResolver(ZONES) });
  t?.teardown(() => daemon.close());
  return daemon;
}

t.test('a second daemon on a live socket refuses to start (exit 70); the first stays reachable', async (t) => {
  const missing = bundleMissing();
  if (missing) {
    if (process.env.CI) t.fail(missing);
    else t.comment(`SKIPPED: ${missing}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-unix-'));
  const path = join(dir, 'policy.sock');
  const config = `listen = unix:${path}\nmode = strict\ndns_servers = 127.0.0.1:9\n`;
  const first = await startBundle(config);
  t.teardown(() => first.stop());
  const configPath = join(dir, 'second.conf');
  writeFileSync(configPath, config);
  const second = spawnSync(process.execPath, [...shippedNodeFlags(), BUNDLE, '--config', configPath], { encoding: 'utf8', timeout: 20_000 });
  t.equal(second.status, 70, 'the second instance exits 70 (EX_SOFTWARE)');
  t.match(second.stdout, new RegExp(`another fcrdns-policyd listens on ${path.replace(/[.]/g, '\\.')}`), 'and says why');
  t.ok(existsSync(path), 'the socket is still there');
  // 192.0.2.1 has no answer from a dead resolver: temperror, deferred — an answer all the same.
  const client = await PolicyClient.connect({ path });
  t.teardown(() => client.close());
  t.match(await client.ask({ client_address: '192.0.2.1' }), /^450 /, 'the first instance still answers on it');
  client.close();
  t.equal(await first.stop(), 0);
  t.notOk(existsSync(path), 'the first removes its own socket when it stops');
});

t.test('a stale socket (nothing answers) is taken over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-unix-'));
  const path = join(dir, 'policy.sock');
  // A socket file whose process is gone: bound, then closed without libuv removing it.
  const stale = net.createServer();
  await new Promise<void>((resolve) => stale.listen(join(dir, 'old.sock'), resolve));
  renameSync(join(dir, 'old.sock'), path);
  await new Promise<void>((resolve) => stale.close(() => resolve()));
  t.ok(existsSync(path), 'a stale socket is at the path');
  await inProcess(t, path);
  t.equal(await asks(path), 'DUNNO');
});

t.test('a daemon that stops removes the path only while it is its own socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-unix-'));
  const path = join(dir, 'policy.sock');
  const old = await inProcess(undefined, path);
  // Its socket moved away (an administrator, a package upgrade), and a newer instance bound the path.
  renameSync(path, join(dir, 'moved.sock'));
  await inProcess(t, path);
  await old.close();
  t.ok(existsSync(path), "the newer instance's socket is left in place");
  t.equal(await asks(path), 'DUNNO', 'and still answers');
  t.ok(existsSync(join(dir, 'moved.sock')), 'the old socket, no longer at its path, is not touched either');
});
