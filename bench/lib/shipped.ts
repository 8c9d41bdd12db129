/** The node flags the shipped launchers use (the systemd unit is the reference), so benches run the daemon as shipped. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function shippedNodeFlags(): string[] {
  const unit = readFileSync(join(import.meta.dirname, '..', '..', 'systemd', 'fcrdns-policyd.service'), 'utf8');
  const match = /^ExecStart=\/usr\/bin\/node ((?:--\S+ )*)\S+fcrdns-policyd\.js/m.exec(unit);
  return (match?.[1] ?? '').split(' ').filter((flag) => flag !== '');
}
