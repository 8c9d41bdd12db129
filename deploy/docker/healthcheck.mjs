// Docker HEALTHCHECK: send one real policy request and expect a well-formed answer.
// 127.0.0.1 is in the default skip_networks, so no DNS query is made: this checks that the
// daemon accepts, parses and answers, nothing more. Exit 0 healthy, 1 not.
import net from 'node:net';

const port = Number(process.env.FCRDNS_HEALTH_PORT ?? 10040);
const host = process.env.FCRDNS_HEALTH_HOST ?? '127.0.0.1';
const request = 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\nrecipient=healthcheck@localhost\n\n';

const socket = net.connect({ port, host });
let reply = '';
const fail = (why) => {
  process.stderr.write(`unhealthy: ${why}\n`);
  process.exit(1);
};
socket.setTimeout(5000, () => fail('no answer within 5 s'));
socket.on('error', (error) => fail(error.message));
socket.on('connect', () => socket.write(request));
socket.on('data', (chunk) => {
  reply += chunk.toString('latin1');
  if (reply.includes('\n\n')) {
    if (/^action=\S/.test(reply)) {
      process.stdout.write(reply.split('\n')[0] + '\n');
      process.exit(0);
    }
    fail(`unexpected reply ${JSON.stringify(reply.slice(0, 100))}`);
  }
});
