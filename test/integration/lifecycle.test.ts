/**
 * Lifecycle under load, on the real daemon (the bundle) and a real DNS server: SIGHUP reloads
 * while a load generator runs (no failed or dropped request, new settings in effect after; a
 * broken file keeps the old settings), and SIGTERM with requests in flight (each answered, then
 * exit 0 within a bound).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { whenAvailable } from '../helpers/requirements.js';
import { bundleMissing, startBundle } from '../helpers/bundle.js';
import { knotMissing, startKnot, startSilentDns } from '../helpers/knot.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { ZONES } from '../helpers/zones.js';

await whenAvailable(knotMissing() ?? bundleMissing(), 'lifecycle tests', main);

async function main(): Promise<void> {
  const knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const base = `listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nskip_networks =\n`;

  await t.test('SIGHUP under load: zero failed or dropped requests, new settings in effect', async (t) => {
    const daemon = await startBundle(`${base}mode = strict\n`);
    t.teardown(() => daemon.stop());
    const clients = await Promise.all(Array.from({ length: 10 }, () => PolicyClient.connect({ port: daemon.port })));
    t.teardown(() => clients.forEach((client) => client.close()));
    const valid = new Set([
      'DUNNO',
      '550 5.7.25 cannot find your hostname, [192.0.2.13]',
      '450 4.7.25 cannot find your hostname, [192.0.2.13]',
      'WARN fcrdns-policyd mismatch: cannot find your hostname, [192.0.2.13]',
    ]);
    let running = true;
    let answered = 0;
    const failures: string[] = [];
    const load = clients.map(async (client, index) => {
      while (running) {
        const address = index % 2 === 0 ? '192.0.2.10' : '192.0.2.13';
        try {
          const reply = await client.ask({ client_address: address });
          if (!valid.has(reply) || (address === '192.0.2.10' && reply !== 'DUNNO')) failures.push(reply);
          answered++;
        } catch (error) {
          failures.push(String(error));
          return;
        }
      }
    });
    const modes = ['soft', 'monitor', 'strict', 'soft', 'monitor'];
    for (const mode of modes) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      t.match(await daemon.reload(`${base}mode = ${mode}\n`), { msg: 'reloaded' }, `reloaded to ${mode}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.match(await daemon.reload(`${base}mode = nonsense\n`), { msg: /^reload failed/ }, 'a broken file is refused');
    await new Promise((resolve) => setTimeout(resolve, 100));
    running = false;
    await Promise.all(load);
    t.same(failures, [], `no failed or dropped request among ${answered}`);
    t.ok(answered > 100, `${answered} requests answered during 6 reloads`);
    const fresh = await PolicyClient.connect({ port: daemon.port });
    t.equal(await fresh.ask({ client_address: '192.0.2.13' }), 'WARN fcrdns-policyd mismatch: cannot find your hostname, [192.0.2.13]', 'the last good config (monitor) is in effect');
    fresh.close();
  });

  await t.test('the daemon runs with its open-file limit raised as far as allowed', async (t) => {
    const daemon = await startBundle(`${base}mode = strict\n`);
    t.teardown(() => daemon.stop());
    const line = await daemon.waitFor((l) => l.msg === 'open-file limit' || String(l.msg).includes('open-file limit'));
    const hard = readFileSync('/proc/self/limits', 'utf8').split('\n').find((row) => row.startsWith('Max open files'))?.split(/\s{2,}/)[2];
    t.equal(String(line.open_file_limit), hard, `soft limit raised to the hard limit (${hard})`);
  });

  await t.test('a broken stdout (the log reader went away) does not stop the answers', async (t) => {
    const daemon = await startBundle(`${base}mode = strict\n`);
    t.teardown(() => daemon.stop());
    daemon.child.stdout?.destroy(); // EPIPE on the next log write
    for (let i = 0; i < 5; i++) {
      const client = await PolicyClient.connect({ port: daemon.port });
      t.equal(await client.ask({ client_address: '192.0.2.13' }), '550 5.7.25 cannot find your hostname, [192.0.2.13]');
      client.close();
      await new Promise((resolve) => setTimeout(resolve, 300)); // past the 250 ms log flush
    }
    t.equal(daemon.child.exitCode, null, 'still running');
    t.match(daemon.stderr(), /cannot write logs \(EPIPE\); still answering requests/);
  });

  await t.test('a stdout nobody reads: answers go on, the log backlog is bounded, SIGTERM still exits', async (t) => {
    const daemon = await startBundle(`${base}mode = strict\n`);
    t.teardown(() => daemon.stop('SIGKILL'));
    // Stop reading the daemon's stdout: the pipe fills, then its writes would block for good.
    daemon.child.stdout?.removeAllListeners('data');
    daemon.child.stdout?.pause();
    const clients = await Promise.all(Array.from({ length: 10 }, () => PolicyClient.connect({ port: daemon.port })));
    let wrong = 0;
    // About 12 MB of decision lines: well past the 4 MiB backlog.
    await Promise.all(
      clients.map(async (client) => {
        for (let i = 0; i < 2500; i++) {
          if ((await client.ask({ client_address: '192.0.2.13' })) !== '550 5.7.25 cannot find your hostname, [192.0.2.13]') wrong++;
        }
      }),
    );
    clients.forEach((client) => client.close());
    t.equal(wrong, 0, 'all 25,000 requests answered');
    t.match(daemon.stderr(), /stdout is not being read: over 4 MiB of log lines waiting; \d+ lines dropped so far/);
    const rssMiB = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'))?.[1]) / 1024;
    t.ok(rssMiB < 150, `RSS ${rssMiB.toFixed(1)} MiB`);
    const started = Date.now();
    t.equal(await daemon.stop('SIGTERM'), 0, 'exit status 0');
    const took = Date.now() - started;
    t.ok(took < 2000 + 1500, `stopped ${took} ms after SIGTERM (the last log flush gives up after 2 s)`);
  });

  await t.test('SIGTERM with requests in flight: each answered, then exit 0 within a bound', async (t) => {
    const silent = await startSilentDns();
    t.teardown(() => silent.stop());
    const daemon = await startBundle(`listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${silent.port}\ndns_timeout = 1s\ndns_tries = 1\nskip_networks =\nmode = strict\n`);
    const clients = await Promise.all(Array.from({ length: 5 }, () => PolicyClient.connect({ port: daemon.port })));
    const pending = clients.map((client, i) => client.ask({ client_address: `192.0.2.${200 + i}` }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    const exit = daemon.stop('SIGTERM');
    const replies = await Promise.all(pending);
    t.ok(replies.every((reply) => reply.startsWith('450 4.7.25')), 'every in-flight request answered (DNS never answers: 450)');
    t.equal(await exit, 0, 'exit status 0');
    const took = Date.now() - started;
    t.ok(took < 1000 + 250 + 2000, `stopped ${took} ms after SIGTERM`);
    t.ok(daemon.lines.some((line) => line.msg === 'stopped'));
    clients.forEach((client) => client.close());
  });
}
