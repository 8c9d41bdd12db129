/** The node flags the shipped launchers use (the systemd unit is the reference), so tests and benches run the daemon as shipped. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { unitNodeFlags } from '../../scripts/package-deb.js';

/** FCRDNS_BENCH_NODE_FLAGS='…' replaces them, to compare heap settings; unset, the unit's flags. */
export function shippedNodeFlags(): string[] {
  const override = process.env.FCRDNS_BENCH_NODE_FLAGS;
  if (override !== undefined) return override.split(' ').filter((flag) => flag !== '');
  const unit = readFileSync(join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'systemd', 'fcrdns-policyd.service'), 'utf8');
  return unitNodeFlags(unit).split(' ');
}
