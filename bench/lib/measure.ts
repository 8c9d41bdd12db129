/** Small measuring helpers the benches share. */
import { readdirSync, readFileSync } from 'node:fs';

/** The middle value (the upper one of an even count). */
export const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** CPU seconds in user space and in the kernel a process has used so far, from /proc (clock ticks of 10 ms). */
export function cpuSeconds(pid: number | undefined): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/**
 * CPU seconds a process has run so far, every thread together, in nanoseconds' resolution: the
 * scheduler's own count per thread (/proc/PID/task/TID/schedstat, first field). /proc/PID/stat
 * counts in 10 ms ticks, 2.5 µs steps over 4,000 new clients: coarser than what a change is worth.
 * A thread that has ended is no longer counted (V8's and libuv's helper threads live as long as the process).
 */
export function cpuSecondsExact(pid: number | undefined): number {
  let nanoseconds = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      nanoseconds += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended while we looked.
    }
  }
  return nanoseconds / 1e9;
}
