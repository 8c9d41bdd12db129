/**
 * Watches how many clients skip_networks exempts. When most of them are, Postfix very likely
 * sees one proxy or NAT address instead of the real clients (a default skip_networks holds the
 * private ranges), and nothing can be judged: said at most once an hour.
 */
import { performance } from 'node:perf_hooks';
import { LIMITS } from '../config/limits.js';
import type { Logger } from '../log/logger.js';

export function createNatWatch(logger: Logger): (skipped: boolean) => void {
  let seen = 0;
  let skippedCount = 0;
  let lastWarning = Number.NEGATIVE_INFINITY;
  return (skipped) => {
    seen++;
    if (skipped) skippedCount++;
    if (seen < LIMITS.natWarningSample) return;
    const now = performance.now();
    if (skippedCount * 2 > seen && now - lastWarning > 3_600_000) {
      lastWarning = now;
      logger.warn(
        { skipped: skippedCount, of: seen },
        'most clients are in skip_networks: Postfix may sit behind NAT or a proxy, so client addresses cannot be judged',
      );
    }
    seen = 0;
    skippedCount = 0;
  };
}
