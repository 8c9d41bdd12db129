/**
 * The layout shows the architecture (src/README.md): src/ holds folders by layer and main.ts,
 * each folder says in its README what it owns and may import, and dependency-cruiser
 * (.dependency-cruiser.cjs) fails on an import against the layers' direction or on any circle.
 * Size (STYLE.md): a function fits on a screen (<= 60 lines), a class <= 250, a file <= 400;
 * past that it is two things.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import ts from 'typescript';

const run = promisify(execFile);
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const DEPCRUISE = join(root, 'node_modules', '.bin', 'depcruise');

/** dependency-cruiser over the `src` of `cwd`, with the project's rules; exit code and report. */
async function cruise(cwd: string): Promise<{ code: number; out: string }> {
  return run(DEPCRUISE, ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd, maxBuffer: 1 << 22 }).then(
    (result) => ({ code: 0, out: result.stdout + result.stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof error.code === 'number' ? error.code : 1, out: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
}

t.test('src/ is folders by layer, each with its README, and main.ts', async (t) => {
  const entries = readdirSync(join(root, 'src'));
  const files = entries.filter((entry) => statSync(join(root, 'src', entry)).isFile());
  t.same(files.sort(), ['README.md', 'main.ts'], 'no module at the root of src/ but main.ts');
  const folders = entries.filter((entry) => statSync(join(root, 'src', entry)).isDirectory()).sort();
  t.same(folders, ['cli', 'config', 'daemon', 'dns', 'judge', 'log', 'protocol', 'reports', 'util']);
  for (const folder of folders) {
    const readme = join(root, 'src', folder, 'README.md');
    t.ok(existsSync(readme), `src/${folder}/README.md`);
    if (existsSync(readme)) t.match(readFileSync(readme, 'utf8'), /^Owns: [\s\S]*^May import: [\s\S]*^Must not/m, `src/${folder}/README.md says what it owns, may and must not import`);
  }
});

t.test('imports run one way and never in a circle (dependency-cruiser)', async (t) => {
  const clean = await cruise(root);
  t.equal(clean.code, 0, `no violation in src/\n${clean.out}`);

  // The check itself: a copy of src/ with a layer importing upwards, which also closes a circle.
  const copy = mkdtempSync(join(tmpdir(), 'fcrdns-layout-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(join(root, 'src'), join(copy, 'src'), { recursive: true });
  for (const file of ['.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) cpSync(join(root, file), join(copy, file));
  const text = join(copy, 'src', 'util', 'text.ts');
  writeFileSync(text, `import '../daemon/daemon.js';\n${readFileSync(text, 'utf8')}`);
  const broken = await cruise(copy);
  t.not(broken.code, 0, 'an upward import fails the check');
  t.match(broken.out, /util-imports-down-only/, 'named as a layer violation');
  t.match(broken.out, /no-circular/, 'and as a circle');
});

const LIMITS = { functionLines: 60, classLines: 250, fileLines: 400 };

/** Every .ts file under a directory. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** What is too long in one file: its own length, and each function or class past its bound. */
function oversized(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const name = path.slice(root.length + 1);
  const found: string[] = [];
  const lines = text.split('\n').length;
  if (lines > LIMITS.fileLines) found.push(`${name}: ${lines} lines`);
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true);
  const span = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getEnd()).line - file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const where = (node: ts.Node) => `${name}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body && span(node) > LIMITS.functionLines) found.push(`${where(node)} a function of ${span(node)} lines`);
    if (ts.isClassLike(node) && span(node) > LIMITS.classLines) found.push(`${where(node)} a class of ${span(node)} lines`);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

t.test('no function over 60 lines, no class over 250, no file over 400 in src/', async (t) => {
  const found = sources(join(root, 'src')).flatMap(oversized);
  t.same(found, [], 'within the sizes');
});
