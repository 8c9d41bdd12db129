/**
 * `npm run package`: dist/fcrdns-policyd_VERSION_all.deb, built with dpkg-deb from the esbuild
 * bundle (run `npm run build` first; the npm script does). Layout:
 *   /usr/lib/fcrdns-policyd/fcrdns-policyd.js       the bundle
 *   /usr/sbin/fcrdns-policyd                         launcher: node with the unit's heap flags
 *   /etc/fcrdns-policyd/fcrdns-policyd.conf          conffile (an admin's edits survive upgrades)
 *   /usr/lib/systemd/system/fcrdns-policyd.service   the hardened unit, ExecStart = the launcher (merged /usr)
 *   /usr/share/man/man8, man5                        fcrdns-policyd(8), fcrdns-policyd.conf(5)
 *   /usr/share/doc/fcrdns-policyd/                   copyright, changelog, README, docs/*.md (gzipped)
 * Maintainer scripts: deploy/debian/. Checked by lintian in test/artefacts/package.test.ts.
 * Usage: tsx scripts/package-deb.ts [OUTDIR]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { commandPage, confPage } from './man.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; description: string };
const NAME = 'fcrdns-policyd';
const MAINTAINER = 'fcrdns-policyd maintainers <maintainers@users.noreply.h-seed-b80805e0.example>';

/** The unit's node flags (systemd/fcrdns-policyd.service is the reference, as for the tests). */
export function unitNodeFlags(unit: string): string {
  const match = /^ExecStart=\/usr\/bin\/node ((?:--\S+ ?)*) \S+fcrdns-policyd\.js/m.exec(unit);
  if (!match?.[1]) throw new Error('systemd/fcrdns-policyd.service: no ExecStart=/usr/bin/node FLAGS …fcrdns-policyd.js line');
  return match[1].trim();
}

/** The packaged unit: the shipped one, starting the launcher. */
export function packagedUnit(unit: string): string {
  return unit
    .replace(/^# The bundle is one file that runs with plain node: install it with\n#.*\n/m, '# The launcher /usr/sbin/fcrdns-policyd starts node with the heap flags below.\n')
    .replace(/^ExecStart=\/usr\/bin\/node (?:--\S+ )*\S+fcrdns-policyd\.js (.*)$/m, `ExecStart=/usr/sbin/${NAME} $1`);
}

/** Timestamps for reproducible files: SOURCE_DATE_EPOCH, else the last commit, else now. */
function buildTime(): Date {
  if (process.env.SOURCE_DATE_EPOCH) return new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000);
  try {
    return new Date(Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) * 1000);
  } catch {
    return new Date();
  }
}

const gz = (text: string | Buffer) => gzipSync(text, { level: 9 });

function changelog(version: string, when: Date): string {
  // RFC 2822 date as Debian changelogs write it.
  const date = when.toUTCString().replace(/GMT$/, '+0000');
  return `${NAME} (${version}) unstable; urgency=medium\n\n  * Release ${version}: see README.md for what it does and how to roll it out.\n\n -- ${MAINTAINER}  ${date}\n`;
}

function copyright(): string {
  const license = readFileSync(join(root, 'LICENSE'), 'utf8')
    .split('\n')
    .slice(4)
    .map((line) => (line === '' ? ' .' : ` ${line}`))
    .join('\n')
    .replace(/\n \.$/, '');
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${NAME}`,
    '',
    'Files: *',
    'Copyright: 2026 The fcrdns-policyd maintainers',
    'License: Expat',
    '',
    'License: Expat',
    license.replace(/\n+$/, ''),
    '',
    // The bundle includes its npm dependencies.
    'Files: usr/lib/fcrdns-policyd/fcrdns-policyd.js',
    'Copyright: 2026 The fcrdns-policyd maintainers, and the authors of pino, ipaddr.js, lru-cache, prom-client, tldts, node-redis (@redis/client) and their dependencies',
    'License: Expat',
    '',
  ].join('\n');
}

function control(version: string, installedKb: number): string {
  return [
    `Package: ${NAME}`,
    `Version: ${version}`,
    'Architecture: all',
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKb}`,
    'Depends: nodejs (>= 18.19)',
    'Section: mail',
    'Priority: optional',
    `Description: ${pkg.description.replace(/ \(iprev\)/, '')}`,
    ' A Postfix policy delegation service that rejects or defers SMTP clients',
    ' whose IP address has no PTR record, or whose PTR name does not resolve',
    ' back to the same address (forward-confirmed reverse DNS, RFC 8601 iprev).',
    ' .',
    ' Unlike Postfix\'s reject_unknown_client_hostname it can be dry-run,',
    ' logs why each client failed as one JSON line, caches and coalesces its',
    ' lookups, allowlists verified names, and reports and replays its own log',
    ' before the mode is tightened.',
    '',
  ].join('\n');
}

/** Every file below `dir`, relative, sorted. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

/** Build the package into `outDir`; `version` other than package.json's is for upgrade tests. */
export function buildDeb(outDir = join(root, 'dist'), version = pkg.version): string {
  const when = buildTime();
  const stage = mkdtempSync(join(tmpdir(), 'fcrdns-deb-'));
  const put = (path: string, content: string | Buffer, mode = 0o644) => {
    const full = join(stage, path);
    mkdirSync(dirname(full), { recursive: true, mode: 0o755 });
    writeFileSync(full, content);
    chmodSync(full, mode);
  };
  const unit = readFileSync(join(root, 'systemd', `${NAME}.service`), 'utf8');
  const launcher = readFileSync(join(root, 'deploy', 'debian', 'launcher.sh'), 'utf8').replace('@NODE_FLAGS@', unitNodeFlags(unit));
  // Run by the launcher, not executed itself: without its #! line (lintian script-not-executable).
  put(`usr/lib/${NAME}/${NAME}.js`, readFileSync(join(root, 'dist', `${NAME}.js`), 'utf8').replace(/^#!.*\n/, ''));
  put(`usr/sbin/${NAME}`, launcher, 0o755);
  put(`etc/${NAME}/${NAME}.conf`, readFileSync(join(root, 'deploy', `${NAME}.conf`)));
  put(`usr/lib/systemd/system/${NAME}.service`, packagedUnit(unit));
  put(`usr/share/man/man8/${NAME}.8.gz`, gz(commandPage(when.toISOString().slice(0, 10))));
  put(`usr/share/man/man5/${NAME}.conf.5.gz`, gz(confPage(when.toISOString().slice(0, 10))));
  put(`usr/share/doc/${NAME}/copyright`, copyright());
  put(`usr/share/doc/${NAME}/changelog.gz`, gz(changelog(version, when)));
  put(`usr/share/doc/${NAME}/README.md.gz`, gz(readFileSync(join(root, 'README.md'))));
  // The README's reference pages, under docs/ as the README links them.
  for (const page of readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md'))) {
    put(`usr/share/doc/${NAME}/docs/${page}.gz`, gz(readFileSync(join(root, 'docs', page))));
  }
  const payload = files(stage);
  const installedKb = Math.ceil(payload.reduce((sum, file) => sum + statSync(join(stage, file)).size, 0) / 1024);
  put('DEBIAN/control', control(version, installedKb));
  put('DEBIAN/conffiles', `/etc/${NAME}/${NAME}.conf\n`);
  put('DEBIAN/md5sums', payload.filter((file) => !file.startsWith('etc/')).map((file) => `${createHash('md5').update(readFileSync(join(stage, file))).digest('hex')}  ${file}\n`).join(''));
  for (const script of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${script}`, readFileSync(join(root, 'deploy', 'debian', script)), 0o755);
  // Directories 0755, owned by root in the archive (--root-owner-group), one timestamp.
  execFileSync('find', [stage, '-type', 'd', '-exec', 'chmod', '0755', '{}', '+']);
  execFileSync('find', [stage, '-exec', 'touch', '-h', '-d', `@${Math.floor(when.getTime() / 1000)}`, '{}', '+']);
  mkdirSync(outDir, { recursive: true });
  const deb = join(outDir, `${NAME}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(stage, { recursive: true, force: true });
  return deb;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(buildDeb(process.argv[2]));
}
