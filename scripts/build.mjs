// Bundle src/main.ts into one file that runs with plain `node` and no node_modules (SPEC).
// The file is replaced atomically (write, then rename), so a daemon or test starting while a
// build runs never reads half a bundle.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/fcrdns-policyd.js';

const result = await build({
  entryPoints: ['src/main.ts'],
  outfile,
  write: false,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Some dependencies are CommonJS and call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __fcrdnsCreateRequire } from 'node:module'; const require = __fcrdnsCreateRequire(import.meta.url);" },
  define: { FCRDNS_VERSION: JSON.stringify(version) },
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
mkdirSync('dist', { recursive: true });
for (const file of result.outputFiles) {
  const temporary = `${file.path}.${process.pid}.tmp`;
  writeFileSync(temporary, file.contents, { mode: 0o755 });
  chmodSync(temporary, 0o755);
  renameSync(temporary, file.path);
}
