/** How a benchmark prints its figures: median (min–max), and each restated target as met or not. */
import { median } from './measure.js';

export const fmt = (values: number[], digits = 0): string =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

/** Lines said on stdout and kept, to be written to a report file at the end. */
export function reporter(): { lines: string[]; say: (line: string) => void; target: (name: string, values: number[], op: '>=' | '<=', limit: number, digits?: number) => void } {
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    console.log(line);
  };
  /** One restated target: the median with its min–max, the target, and whether it is met. */
  const target = (name: string, values: number[], op: '>=' | '<=', limit: number, digits = 2): void => {
    const value = median(values);
    const met = op === '>=' ? value >= limit : value <= limit;
    say(`target: ${name} ${fmt(values, digits)} ${op === '>=' ? '≥' : '≤'} ${limit} — ${met ? 'met' : 'NOT met'}`);
  };
  return { lines, say, target };
}
