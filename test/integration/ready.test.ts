/**
 * Ready means ready (issue 14): the metrics endpoint listens before the policy port accepts a
 * connection, so a client that connects the moment the policy port opens, and then scrapes
 * /metrics, finds its decision counted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUNDLE, BUNDLE_NODE, bundleMissing } from '../helpers/bundle.js';
import { freePort } from '../helpers/knot.js';
import { policyRequest } from '../helpers/policy-client.js';
import { shippedNodeFlags } from '../helpers/shipped.js';

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Connect as soon as the port accepts, retrying every millisecond. */
async function connectWhenOpen(port: number, deadline: number): Promise<net.Socket> {
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch {
      if (Date.now() > deadline) throw new Error('the policy port never opened');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`READY TEST SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test('a client that connects the moment the policy port opens is counted by /metrics', async (t) => {
    const [policyPort, metricsPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-ready-'));
    const config = join(dir, 'ready.conf');
    // A skipped client needs no DNS: the decision is made the moment the request arrives.
    writeFileSync(config, `listen = 127.0.0.1:${policyPort}\nmetrics_listen = 127.0.0.1:${metricsPort}\nmode = strict\n`);
    const child = spawn(BUNDLE_NODE, [...shippedNodeFlags(), BUNDLE, '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
    t.teardown(() => child.kill());
    const socket = await connectWhenOpen(policyPort, Date.now() + 15_000);
    t.teardown(() => socket.destroy());
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.endsWith('\n\n')) resolve(text);
      });
      socket.write(policyRequest({ client_address: '127.0.0.1' }));
    });
    t.equal(reply, 'action=DUNNO\n\n');
    const body = await get(`http://127.0.0.1:${metricsPort}/metrics`);
    t.match(body, /^fcrdns_decisions_total\{check="fcrdns",result="skipped",action="dunno"\} 1$/m, 'the first decision is counted');
  });
}
