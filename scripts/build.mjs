// Bundle src/main.ts into one file that runs with plain `node` and no node_modules (SPEC).
// Usage: node scripts/build.mjs [OUTDIR] (default dist/; test/artefacts/distro.test.ts builds elsewhere on the floor's node).
// The file is replaced atomically (write, then rename), so a daemon or test starting while a
// build runs never reads half a bundle.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outDir = process.argv[2] ?? 'dist';
const outfile = `${outDir}/fcrdns-policyd.js`;

const result = await build({
  entryPoints: ['src/main.ts'],
  outfile,
  write: false,
  bundle: true,
  platform: 'node',
  // The runtime floor (SPEC): Debian 12 ships Node 18.20, Ubuntu 24.04 18.19. esbuild lowers any
  // newer syntax for it; newer APIs are kept out by type-checking against @types/node 18.19.
  target: 'node18.19',
  // CommonJS: node starts it sooner than an ES module (44 against 48-82 ms over `node -e ''` to a
  // first answer in bench/run.ts --only startup: no ESM loader, no ESM facade per
  // built-in module, lazy compilation), and a copy installed on its own (the systemd unit, the
  // Docker image) is read as what it is instead of by syntax detection.
  format: 'cjs',
  define: { FCRDNS_VERSION: JSON.stringify(version) },
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
mkdirSync(outDir, { recursive: true });
// The package is "type": "module"; the bundle beside this file is CommonJS.
writeFileSync(`${outDir}/package.json`, `${JSON.stringify({ type: 'commonjs' })}\n`);
for (const file of result.outputFiles) {
  const temporary = `${file.path}.${process.pid}.tmp`;
  writeFileSync(temporary, file.contents, { mode: 0o755 });
  chmodSync(temporary, 0o755);
  renameSync(temporary, file.path);
}
