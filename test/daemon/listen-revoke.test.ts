/**
 * Reload revokes (issue 24, item 9): when a reload narrows listen_allow, connections already open
 * from peers it no longer allows are closed, with one log line that counts them; connections from
 * peers still allowed keep being answered.
 */
import net from 'node:net';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

/** The metrics endpoint's text. */
async function metrics(address: string | undefined): Promise<string> {
  const response = await fetch(`http://${address ?? ''}/metrics`);
  return response.text();
}

const ZONES = { ptr: { '5.113.0.203.in-addr.arpa': ['mail.example.com'] }, a: { 'mail.example.com': ['203.0.113.5'] } };

t.test('narrowing listen_allow on reload closes the connections it no longer allows, and says how many', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const config = (allow: string) => parseConfig(`listen = 127.0.0.1:0\nmode = strict\nlisten_allow = ${allow}\nmetrics_listen = 127.0.0.1:0\n`, 'revoke.conf');
  const daemon = await startDaemon({ config: config('127.0.0.0/8'), logger, resolver: zoneResolver(ZONES) });
  t.teardown(() => daemon.close());
  const port = daemon.port ?? 0;
  const stays = await PolicyClient.connect({ port, host: '127.0.0.1' });
  t.teardown(() => stays.close());
  const goes: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    goes.push(socket);
  }
  t.teardown(() => goes.forEach((socket) => socket.destroy()));
  t.equal(await stays.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  const closed = Promise.all(goes.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()))));

  daemon.reload(config('127.0.0.1/32'));
  await closed;
  t.pass('the three connections from 127.0.0.2 are closed');
  const said = lines.filter((line) => line.msg === 'closed connections from peers no longer in listen_allow');
  t.equal(said.length, 1, 'one log line');
  t.equal(said[0]?.closed, 3, 'with the count');
  t.equal(daemon.serverStats.revoked, 3);
  t.match(await metrics(daemon.metricsAddress), /^fcrdns_connections_total\{fate="revoked"\} 3$/m, 'counted in the metrics');
  t.equal(await stays.ask({ client_address: '203.0.113.5' }), 'DUNNO', 'a peer still allowed is answered as before');

  daemon.reload(config('127.0.0.1/32'));
  t.equal(lines.filter((line) => line.msg === 'closed connections from peers no longer in listen_allow').length, 1, 'a reload that revokes nothing says nothing');
});
