/**
 * The key table of docs/configuration.md, generated from the key table the code validates with
 * (KEY_DOCS and the defaults in src/config/config.ts), as scripts/man.ts makes fcrdns-policyd.conf(5)
 * from it: no key is documented twice by hand. `npm run docs` rewrites the table between its
 * markers; test/artefacts/docs.test.ts fails while the page differs from what this prints.
 * Usage: tsx scripts/docs.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, defaultValues, KEY_DOCS } from '../src/config/config.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
export const CONFIGURATION_PAGE = join(root, 'docs', 'configuration.md');
export const KEYS_BEGIN = '<!-- keys: generated from the key table by scripts/docs.ts (npm run docs); do not edit by hand -->';
export const KEYS_END = '<!-- end of keys -->';

/** A table cell: pipes escaped, so a value cannot end the cell. */
const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** The Markdown table of every key: its default, the values it takes, what it does. */
export function keyTable(): string {
  const defaults = defaultValues();
  const rows = CONFIG_KEYS.map((key) => {
    const doc = KEY_DOCS[key];
    const fallback = defaults[key] === '' ? 'empty' : `\`${defaults[key]}\``;
    return `| \`${key}\` | ${cell(doc.defaultText ?? fallback)} | ${cell(doc.values)} | ${cell(doc.meaning)} |`;
  });
  return ['| key | default | values | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The page with its key table replaced by the generated one. */
export function withKeyTable(page: string): string {
  const begin = page.indexOf(KEYS_BEGIN);
  const end = page.indexOf(KEYS_END);
  if (begin < 0 || end < begin) throw new Error(`docs/configuration.md: no ${KEYS_BEGIN} … ${KEYS_END} markers`);
  return `${page.slice(0, begin + KEYS_BEGIN.length)}\n${keyTable()}\n${page.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const page = readFileSync(CONFIGURATION_PAGE, 'utf8');
  const generated = withKeyTable(page);
  if (process.argv.includes('--check')) {
    if (generated !== page) {
      process.stderr.write('docs/configuration.md: the key table differs from the code (run npm run docs)\n');
      process.exit(1);
    }
  } else if (generated !== page) {
    writeFileSync(CONFIGURATION_PAGE, generated);
  }
}
