/** The heap check: a cache_size the V8 heap cap cannot hold is refused, with the value to set. */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { heapProblem } from '../../src/cli/cli.js';
import { parseConfig } from '../../src/config/config.js';
import { BUNDLE, BUNDLE_NODE, bundleMissing } from '../helpers/bundle.js';

const MB = 1024 * 1024;

t.test('the default cache fits the shipped cap (140 MB heap limit); ten times as much does not', async (t) => {
  t.equal(heapProblem(parseConfig('', 'x.conf'), 140 * MB), undefined);
  t.equal(heapProblem(parseConfig('cache_size = 150000\n', 'x.conf'), 140 * MB), undefined);
  const problem = heapProblem(parseConfig('cache_size = 1000000\n', 'x.conf'), 140 * MB);
  t.match(problem, /^x\.conf: cache_size = 1000000 needs about 446 MB of heap, but node runs with a 140 MB heap limit: raise --max-old-space-size to at least 446/);
});

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`HEAP CHECK BUNDLE TEST SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test('the daemon refuses to start with a cache its heap cannot hold (exit 78)', async (t) => {
    const config = join(mkdtempSync(join(tmpdir(), 'fcrdns-heap-')), 'c.conf');
    writeFileSync(config, 'listen = 127.0.0.1:0\ncache_size = 1000000\n');
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(BUNDLE_NODE, ['--max-old-space-size=96', '--max-semi-space-size=4', '--no-allocation-site-pretenuring', BUNDLE, '--config', config], { timeout: 20_000 }, (error, _stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stderr }),
      );
    });
    t.equal(result.code, 78);
    t.match(result.stderr, /cache_size = 1000000 needs about 446 MB of heap/);
  });
}
