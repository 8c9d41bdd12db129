/**
 * The import direction of src/ (each folder's README says what it may import), checked by
 * dependency-cruiser in test/artefacts/layout.test.ts: a violation or a circle fails `npm test`.
 * Layers, low to high: util < config < protocol, dns, log < judge < reports, daemon < cli < main.ts.
 */
const below = {
  util: [],
  config: ['util'],
  protocol: ['config', 'util'],
  dns: ['config', 'util'],
  log: ['config', 'util'],
  judge: ['dns', 'protocol', 'log', 'config', 'util'],
  reports: ['judge', 'dns', 'protocol', 'log', 'config', 'util'],
  daemon: ['judge', 'dns', 'protocol', 'log', 'config', 'util'],
  cli: ['reports', 'daemon', 'judge', 'dns', 'protocol', 'log', 'config', 'util'],
};
const layers = Object.keys(below);

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No import circle, inside a folder or across folders.', from: {}, to: { circular: true } },
    ...layers.map((layer) => ({
      name: `${layer}-imports-down-only`,
      severity: 'error',
      comment: `src/${layer}/ may import only ${below[layer].length ? below[layer].map((l) => `src/${l}/`).join(', ') : 'packages and node: modules'} (src/${layer}/README.md).`,
      from: { path: `^src/${layer}/` },
      to: { path: '^src/', pathNot: [`^src/${layer}/`, ...below[layer].map((l) => `^src/${l}/`)] },
    })),
    { name: 'main-is-the-entry', severity: 'error', comment: 'src/main.ts calls the CLI and nothing else.', from: { path: '^src/main\\.ts$' }, to: { path: '^src/', pathNot: '^src/cli/' } },
    { name: 'only-folders', severity: 'error', comment: 'No module at src/ root but main.ts.', from: { path: '^src/[^/]+\\.ts$', pathNot: '^src/main\\.ts$' }, to: {} },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
