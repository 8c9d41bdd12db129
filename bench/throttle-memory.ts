/**
 * The in-memory throttle store's heap per network (bench/throttle.ts runs it with --expose-gc):
 * a million distinct networks, half IPv4 /24 and half IPv6 /64, all within one emission interval
 * so none expires and the store ends full (LIMITS.throttleMemoryKeys); the heap grown, per key
 * held, after a full collection. Prints one JSON line.
 */
import { LIMITS } from '../src/config/limits.js';
import { MemoryThrottle } from '../src/daemon/throttle-memory.js';
import { gcraParams } from '../src/judge/throttle.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const params = gcraParams(20, 3_600_000, 5);
if (typeof params === 'string') throw new Error(params);
const now = Date.now();
const memory = new MemoryThrottle();
gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < 1_000_000; i++) {
  const key = i % 2 === 0 ? `${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}.0/24` : `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`;
  memory.take(params, key, now + (i % 1000));
}
gc();
const grown = process.memoryUsage().heapUsed - before;
console.log(JSON.stringify({ perKey: grown / memory.size, keys: memory.size, cap: LIMITS.throttleMemoryKeys, limit: LIMITS.heapBytesPerThrottleKey }));
