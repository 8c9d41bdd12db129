/**
 * The README and the pages under docs/: the README stays a front door (short, every page linked
 * from it, every link and anchor resolving), and what a page lists of the code is the code's:
 * the key table is generated from the key table the code validates with, the decision-line
 * fields are the ones a daemon writes, the not-replayable reasons and bad-line kinds those of
 * `replay` and the log reader. Nothing is documented twice by hand.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CONFIG_KEYS, defaultValues, KEY_DOCS, parseConfig } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { BAD_LINE_TEXT } from '../../src/reports/decision-record.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { NOT_REPLAYABLE_TEXT } from '../../src/reports/replay.js';
import { CONFIGURATION_PAGE, keyTable, withKeyTable } from '../../scripts/docs.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { zoneResolver, type ZoneTable } from '../helpers/zone-resolver.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const PAGES = readdirSync(join(root, 'docs'))
  .filter((name) => name.endsWith('.md'))
  .sort()
  .map((name) => `docs/${name}`);
const DOCUMENTS = ['README.md', ...PAGES, 'SECURITY.md', 'BENCHMARKS.md'];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

/** The anchors of a Markdown file: its headings' slugs (repeats numbered as GitHub does). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const match of text.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.*)$/gm)) {
    const base = slug(match[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count === 0 ? base : `${base}-${count}`);
  }
  return out;
}

/** The backticked names in a string: `a`, `b.c` → ['a', 'b.c']. */
const ticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');

/** The rows of the first Markdown table after `heading` in `text`: each row's cells. */
function tableAfter(text: string, heading: string): string[][] {
  const start = text.indexOf(heading);
  if (start < 0) return [];
  const lines = text.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('| '));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(2, -2).split(/ (?<!\\)\| /));
  }
  return rows;
}

t.test('the README is a front door: at most 300 lines, every page under docs/ linked from it', async (t) => {
  const readme = read('README.md');
  t.ok(readme.split('\n').length <= 300, `README.md has ${readme.split('\n').length} lines`);
  for (const page of PAGES) t.match(readme, `](${page}`, `README links ${page}`);
  for (const heading of ['## Quick start', '## Install', '## Wiring it into Postfix', '## Rolling out: monitor → soft → strict', '## Where to read more']) {
    t.match(readme, `\n${heading}\n`, heading);
  }
});

t.test('every relative link in the README and the pages resolves, anchors included', async (t) => {
  for (const document of DOCUMENTS) {
    const text = read(document).replace(/^```[\s\S]*?^```/gm, '');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1] ?? '';
      if (/^[a-z]+:/.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? document : normalize(join(dirname(document), path));
      let content: string;
      try {
        content = read(file);
      } catch {
        t.fail(`${document}: ${target}: no such file`);
        continue;
      }
      if (anchor) t.ok(anchors(content).has(anchor), `${document}: ${target}: ${file} has #${anchor}`);
    }
  }
});

t.test('every file the README and the pages name exists; the layout names every source file', async (t) => {
  const named = /(?<![\w/.-])((?:src|scripts|test|deploy|systemd|bench)\/[\w./-]*[\w-]\.(?:ts|mjs|yml|json|conf|snippet|service|tsv|sh))\b/g;
  for (const document of [...DOCUMENTS.slice(0, PAGES.length + 1), 'SECURITY.md']) {
    for (const match of read(document).matchAll(named)) {
      t.ok(existsSync(join(root, match[1] ?? '')), `${document}: ${match[1]} exists`);
    }
  }
  // The layout: a folder line (`src/dns/  …`), then its files indented (`  iprev.ts  …`).
  const development = read('docs/development.md');
  const layout = development.slice(development.indexOf('## Layout'), development.indexOf('## Build and test'));
  const listed: string[] = [];
  let folder = '';
  for (const line of layout.split('\n')) {
    const top = /^(src\/(?:[\w-]+\/)?)(?:([\w.-]+\.ts))?\s/.exec(line);
    if (top) {
      folder = top[1] ?? '';
      if (top[2]) listed.push(`${folder}${top[2]}`);
      continue;
    }
    const inner = /^ {2}([\w.-]+\.ts)\s/.exec(line);
    if (inner && folder) listed.push(`${folder}${inner[1]}`);
  }
  const sources = (readdirSync(join(root, 'src'), { recursive: true }) as string[])
    .filter((path) => path.endsWith('.ts'))
    .map((path) => `src/${path.split(sep).join('/')}`)
    .sort();
  t.same([...listed].sort(), sources, 'docs/development.md "Layout" lists every file under src/, and no other');
});

t.test('docs/configuration.md lists every key with its default, as generated from the key table', async (t) => {
  const page = readFileSync(CONFIGURATION_PAGE, 'utf8');
  t.equal(page, withKeyTable(page), 'the key table is the generated one (npm run docs rewrites it)');
  t.ok(page.includes(keyTable()));
  const rows = tableAfter(page, '<!-- keys:');
  t.same(rows.map((row) => ticked(row[0] ?? '')[0]), [...CONFIG_KEYS], 'every key, once, in the key table order');
  const defaults = defaultValues();
  for (const row of rows) {
    const key = ticked(row[0] ?? '')[0] as keyof typeof defaults;
    const expected = KEY_DOCS[key].defaultText ?? (defaults[key] === '' ? 'empty' : `\`${defaults[key]}\``);
    t.equal(row[1], expected, `${key}: its default`);
  }
});

t.test('no other page keeps a key table by hand', async (t) => {
  const keyRow = new RegExp(`^\\| \`(${CONFIG_KEYS.join('|')})\` \\|`, 'm');
  for (const document of DOCUMENTS.filter((path) => path !== 'docs/configuration.md')) {
    t.notMatch(read(document), keyRow, `${document} has no row per key`);
  }
});

t.test('docs/logs.md: the not-replayable reasons are those of replay, the bad-line kinds those of the reader', async (t) => {
  const logs = read('docs/logs.md');
  const reasons = tableAfter(logs, 'counted as **not replayable**').map((row) => ticked(row[0] ?? '')[0]);
  t.same([...reasons].sort(), Object.keys(NOT_REPLAYABLE_TEXT).sort(), 'the reasons table');
  const bad = /"bad": \{([^}]*)\}/.exec(logs)?.[1] ?? '';
  t.same([...bad.matchAll(/"([a-z_]+)"\?/g)].map((match) => match[1]).sort(), Object.keys(BAD_LINE_TEXT).sort(), "report --json's bad lines");
  const prose = logs.slice(logs.indexOf('Bad input is counted'), logs.indexOf('Other lines of the daemon'));
  for (const kind of Object.keys(BAD_LINE_TEXT)) t.ok(ticked(prose).includes(kind), `${kind} explained`);
});

// Clients that between them make every field of a decision line appear (203.0.113.0/24).
const LONG = (i: number) => `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.n${i}.example.com`;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const ZONES: ZoneTable = {
  ptr: {
    '10.113.0.203.in-addr.arpa': ['mail.example.com'],
    '11.113.0.203.in-addr.arpa': ['203-0-113-11.dyn.isp.example'],
    '12.113.0.203.in-addr.arpa': ['mx.partner.example'],
    '13.113.0.203.in-addr.arpa': ['192.0.2.1', 'bad_name!.example'],
    '14.113.0.203.in-addr.arpa': ['broken.example.com'],
    '15.113.0.203.in-addr.arpa': { error: 'ESERVFAIL' },
    '16.113.0.203.in-addr.arpa': ['many.example.com'],
    '17.113.0.203.in-addr.arpa': range(50).map((i) => LONG(i)),
    '18.113.0.203.in-addr.arpa': range(50).map((i) => LONG(100 + i)),
  },
  a: {
    'mail.example.com': ['203.0.113.10'],
    '203-0-113-11.dyn.isp.example': ['203.0.113.11'],
    'mx.partner.example': ['203.0.113.12'],
    'broken.example.com': { error: 'ESERVFAIL' },
    'many.example.com': range(20).map((i) => `198.51.100.${i}`),
    ...Object.fromEntries(range(50).map((i) => [LONG(i), range(16).map((j) => `198.51.${i}.${j}`)])),
    ...Object.fromEntries(range(50).map((i) => [LONG(100 + i), ['203.0.113.18']])),
  },
};

/** A decision line's field paths: top level, and inside `ptr`, `forward[]` and `generic`. */
function fieldPaths(line: Record<string, unknown>): string[] {
  const paths: string[] = [];
  for (const [key, value] of Object.entries(line)) {
    if (key === 'forward' && Array.isArray(value)) for (const check of value) paths.push(...Object.keys(check as object).map((inner) => `forward[].${inner}`));
    else if ((key === 'ptr' || key === 'generic') && typeof value === 'object' && value !== null) paths.push(...Object.keys(value).map((inner) => `${key}.${inner}`));
    else paths.push(key);
  }
  return paths;
}

t.test('docs/logs.md lists exactly the fields a decision line has', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const config = parseConfig(
    [
      'listen = 127.0.0.1:0',
      'mode = strict',
      'max_ptr_names = 50',
      'authres_header = yes',
      'authserv_id = mx.example.org',
      'generic_action = warn',
      'helo_mismatch_action = warn',
      'mismatch_action = throttle',
      'pass_names = .partner.example',
      '',
    ].join('\n'),
    'docs.conf',
  );
  const daemon = await startDaemon({ config, logger, resolver: zoneResolver(ZONES) });
  t.teardown(() => daemon.close());
  const client = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => client.close());
  for (const last of range(9).map((i) => 10 + i)) await client.ask({ client_address: `203.0.113.${last}` });
  await client.ask({ client_address: '203.0.113.10', recipient: 'postmaster@example.org' });
  const control = '\u0001'.repeat(250);
  await client.ask({ client_address: '203.0.113.10', helo_name: control, queue_id: control, protocol_state: control, recipient: `${control}@example.org` });
  await client.ask({ client_address: '203.0.113.10', instance: 'one.message', recipient: 'a@example.org' });
  await client.ask({ client_address: '203.0.113.10', instance: 'one.message', recipient: 'b@example.org' });

  const decisions = lines.filter((line) => line.msg === 'decision');
  t.equal(decisions.length, 12, 'one decision line per message');
  const written = new Set(decisions.flatMap(fieldPaths));
  const logs = read('docs/logs.md');
  const documented = new Set(tableAfter(logs, 'The fields of a decision line').flatMap((row) => ticked(row[0] ?? '')));
  t.same([...written].filter((field) => !documented.has(field)).sort(), [], 'every field the daemon writes is documented');
  t.same([...documented].filter((field) => !written.has(field)).sort(), [], 'every documented field is written');

  const reused = lines.find((line) => line.msg === 'decision reused for another recipient');
  t.ok(reused, 'the later recipient has its own line');
  const common = ['level', 'time', 'name', 'conn', 'peer', 'msg'];
  const sentence = /`"msg":"decision reused for another recipient"` with ([^.]*), so every request/.exec(logs)?.[1] ?? '';
  t.same(ticked(sentence).sort(), Object.keys(reused ?? {}).filter((key) => !common.includes(key)).sort(), "the reused line's fields");
});
