// Bundle src/main.ts into one file that runs with plain `node` and no node_modules (SPEC).
import { build } from 'esbuild';
import { chmodSync, readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/fcrdns-policyd.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Some dependencies are CommonJS and call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __fcrdnsCreateRequire } from 'node:module'; const require = __fcrdnsCreateRequire(import.meta.url);" },
  define: { FCRDNS_VERSION: JSON.stringify(version) },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync('dist/fcrdns-policyd.js', 0o755);
