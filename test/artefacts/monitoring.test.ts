/**
 * The Prometheus alert rules and the Grafana dashboard, each checked by its ecosystem's tool and
 * against the daemon itself: `promtool check rules` and `promtool test rules` (a firing and a
 * quiet case per alert, deploy/prometheus/fcrdns-policyd.rules.test.yml); every dashboard query
 * is valid PromQL (promtool checks it as a recording rule); and every metric and label the
 * dashboard and the rules name is one a running daemon (the bundle, over Knot, with a class
 * throttled so the throttle store's metrics are there) really exports.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { bundleMissing, startBundle } from '../helpers/bundle.js';
import { freePort, knotMissing, startKnot } from '../helpers/knot.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { hasCommand, whenAvailable } from '../helpers/requirements.js';
import { ZONES } from '../helpers/zones.js';

const run = promisify(execFile);
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const RULES = join(root, 'deploy', 'prometheus', 'fcrdns-policyd.rules.yml');
const RULE_TESTS = join(root, 'deploy', 'prometheus', 'fcrdns-policyd.rules.test.yml');
const DASHBOARD = join(root, 'deploy', 'grafana', 'fcrdns-policyd.json');

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; uid: string; templating: { list: Array<{ name: string }> } };
/** The dashboard's queries as Prometheus runs them (Grafana's variables filled in). */
const dashboardQueries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
const concrete = (expr: string) => expr.replace(/\$__rate_interval/g, '5m').replace(/\$job|\$instance/g, '.*');
const ruleExprs = [...readFileSync(RULES, 'utf8').matchAll(/expr: (\|\n((?: {10}.*\n)+)|.*)/g)].map((match) => (match[2] ?? match[1] ?? '').trim());

await whenAvailable(hasCommand('promtool') ? undefined : 'promtool is missing (apt-get install prometheus; .ci/run installs it)', 'Prometheus rules', async () => {
  await t.test('promtool check rules and promtool test rules pass', async (t) => {
    const check = await run('promtool', ['check', 'rules', RULES]);
    t.match(check.stdout, /SUCCESS: 8 rules found/);
    const tests = await run('promtool', ['test', 'rules', RULE_TESTS], { cwd: join(root, 'deploy', 'prometheus') });
    t.match(tests.stdout, /SUCCESS/);
    const alerts = [...readFileSync(RULES, 'utf8').matchAll(/- alert: (\w+)/g)].map((match) => match[1]);
    const tested = new Set([...readFileSync(RULE_TESTS, 'utf8').matchAll(/alertname: (\w+)/g)].map((match) => match[1]));
    t.same(alerts.filter((alert) => !tested.has(alert)), [], 'every alert has unit tests');
  });

  await t.test('every dashboard query is valid PromQL', async (t) => {
    t.ok(dashboardQueries.length >= 15, `${dashboardQueries.length} queries`);
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-promql-'));
    const rules = ['groups:', '  - name: dashboard', '    rules:', ...dashboardQueries.flatMap((query, i) => [`      - record: dashboard:query${i}`, `        expr: ${JSON.stringify(concrete(query.expr))}`])];
    writeFileSync(join(dir, 'dashboard.rules.yml'), `${rules.join('\n')}\n`);
    const check = await run('promtool', ['check', 'rules', join(dir, 'dashboard.rules.yml')]);
    t.match(check.stdout, `SUCCESS: ${dashboardQueries.length} rules found`);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      t.equal(panel.datasource?.uid, '${DS_PROMETHEUS}', `${panel.title}: the datasource is the import input`);
    }
  });
});

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

await whenAvailable(knotMissing() ?? bundleMissing(), 'dashboard and rules against a running daemon', async () => {
  await t.test('every metric and label the dashboard and the rules name is exported by a running daemon', async (t) => {
    const knot = await startKnot(ZONES);
    t.teardown(() => knot.stop());
    const metricsPort = await freePort();
    const daemon = await startBundle(
      `listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:${metricsPort}\ndns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nskip_networks = 192.0.2.200/32\nmode = strict\n` +
        // A throttled class (a budget never spent here), so the throttle store's metrics exist too.
        'mismatch_action = throttle\nthrottle_rate = 1000/second\nthrottle_burst = 1000\n',
    );
    t.teardown(() => daemon.stop());
    const client = await PolicyClient.connect({ port: daemon.port });
    for (const address of ['192.0.2.10', '192.0.2.10', '192.0.2.11', '192.0.2.13', '198.51.100.1', '192.0.2.18', '192.0.2.200']) await client.ask({ client_address: address });
    client.close();
    const body = await get(`http://127.0.0.1:${metricsPort}/metrics`);
    const types = new Map([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => [match[1] ?? '', match[2] ?? '']));
    const labels = new Set([...body.matchAll(/^fcrdns_\w+\{([^}]*)\}/gm)].flatMap((match) => [...(match[1] ?? '').matchAll(/(\w+)="/g)].map((label) => label[1])));
    const named = (expr: string) => [...expr.matchAll(/\b(fcrdns_\w+)/g)].map((match) => match[1] ?? '');
    const exported = (name: string) => {
      if (types.has(name)) return true;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return types.get(base) === 'histogram' || types.get(base) === 'summary';
    };
    const everywhere = [...dashboardQueries.map((query) => ({ where: `dashboard "${query.panel}"`, expr: query.expr })), ...ruleExprs.map((expr) => ({ where: 'rules', expr }))];
    t.ok(ruleExprs.length >= 7, `${ruleExprs.length} rule expressions`);
    const unknown = everywhere.flatMap(({ where, expr }) => named(expr).filter((name) => !exported(name)).map((name) => `${where}: ${name}`));
    t.same(unknown, [], 'every metric named is exported');
    // Labels the queries select or group by (job, instance and le come from Prometheus itself).
    const used = everywhere.flatMap(({ where, expr }) =>
      [...expr.matchAll(/\bby \(([^)]*)\)|\{([^}]*)\}/g)].flatMap((match) =>
        (match[1] ?? [...(match[2] ?? '').matchAll(/(\w+)\s*(?:=~|!=|=)/g)].map((m) => m[1]).join(','))
          .split(',')
          .map((label) => label.trim())
          .filter((label) => label !== '' && !['job', 'instance', 'le'].includes(label))
          .map((label) => ({ where, label })),
      ),
    );
    t.same(used.filter(({ label }) => !labels.has(label)).map(({ where, label }) => `${where}: ${label}`), [], 'every label used is exported');
    t.comment(`${types.size} metric families exported; ${new Set(everywhere.flatMap(({ expr }) => named(expr))).size} named by the dashboard and rules`);
  });
});
