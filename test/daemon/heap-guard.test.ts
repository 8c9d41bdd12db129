/** Load shedding near the heap cap: on above 75 % of the limit live, off again below 60 %, looked at most every 50 ms. */
import t from 'tap';
import { createHeapGuard, type HeapReading } from '../../src/daemon/heap-guard.js';

t.test('sheds while the heap is nearly full, with hysteresis, and says when it starts and ends', async (t) => {
  let reading: HeapReading = { used: 50, limit: 100 };
  let now = 0;
  const changes: Array<[boolean, number]> = [];
  const guard = createHeapGuard((shedding, _reading, shed) => changes.push([shedding, shed]), () => reading, () => now);
  t.equal(guard.shedding(), false);
  reading = { used: 90, limit: 100 };
  t.equal(guard.shedding(), false, 'not sampled again within 50 ms');
  now += 50;
  t.equal(guard.shedding(), true, 'above 75 %: shedding');
  guard.count();
  guard.count();
  reading = { used: 65, limit: 100 };
  now += 50;
  t.equal(guard.shedding(), true, 'still above 60 %: still shedding');
  reading = { used: 55, limit: 100 };
  now += 50;
  t.equal(guard.shedding(), false, 'below 60 %: looked up again');
  t.equal(guard.shed, 2);
  t.same(changes, [[true, 0], [false, 2]]);
});

t.test('the daemon answers new clients per temperror_action while the heap is nearly full; cached clients as usual', async (t) => {
  const { parseConfig } = await import('../../src/config/config.js');
  const { startDaemon } = await import('../../src/daemon/daemon.js');
  const { createStreamLogger } = await import('../../src/log/logger.js');
  const { PolicyClient } = await import('../helpers/policy-client.js');
  const { zoneResolver } = await import('../helpers/zone-resolver.js');
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  let used = 10;
  const daemon = await startDaemon({
    config: parseConfig('listen = 127.0.0.1:0\nmode = strict\n', 'shed.conf'),
    logger,
    resolver: zoneResolver({
      ptr: { '5.113.0.203.in-addr.arpa': ['mail.example.com'], '6.113.0.203.in-addr.arpa': ['mail.example.com'] },
      a: { 'mail.example.com': ['203.0.113.5', '203.0.113.6'] },
    }),
    heapReading: () => ({ used, limit: 100 }),
  });
  t.teardown(() => daemon.close());
  const client = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => client.close());
  t.equal(await client.ask({ client_address: '203.0.113.5' }), 'DUNNO', 'a client seen before the pressure');
  used = 95;
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(await client.ask({ client_address: '203.0.113.6' }), '450 4.7.25 cannot find your hostname, [203.0.113.6]', 'a new client is deferred without DNS');
  t.equal(await client.ask({ client_address: '203.0.113.5' }), 'DUNNO', 'the cached client is judged as usual');
  t.match(lines.find((line) => line.client_address === '203.0.113.6'), { result: 'temperror', temperror_stage: 'ptr', ptr: { code: 'EHEAPFULL' }, action: 'defer' });
  t.ok(lines.some((line) => line.level === 'warn' && String(line.msg).startsWith('heap nearly full')), 'and the start is logged as a warning');
  used = 10;
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(await client.ask({ client_address: '203.0.113.6' }), 'DUNNO', 'looked up again once the heap freed up');
  t.match(lines.find((line) => String(line.msg).startsWith('heap freed up')), { shed: 1 });
});
