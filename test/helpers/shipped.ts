/** The node flags the shipped launchers use (the systemd unit is the reference), so tests and benches run the daemon as shipped. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** FCRDNS_BENCH_NODE_FLAGS='…' replaces them, to compare heap settings; unset, the unit's flags. */
export function shippedNodeFlags(): string[] {
  const override = process.env.FCRDNS_BENCH_NODE_FLAGS;
  if (override !== undefined) return override.split(' ').filter((flag) => flag !== '');
  const unit = readFileSync(join(import.meta.dirname, '..', '..', 'systemd', 'fcrdns-policyd.service'), 'utf8');
  const match = /^ExecStart=\/usr\/bin\/node ((?:--\S+ )*)\S+fcrdns-policyd\.js/m.exec(unit);
  return (match?.[1] ?? '').split(' ').filter((flag) => flag !== '');
}
