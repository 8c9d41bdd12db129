/**
 * The file format, Postfix main.cf syntax (postconf(5)): lines, comments, continuation lines,
 * `name = value`, and the value syntax several keys share (lists, time units). It knows no key
 * but the names it is given, so the key table (keys.ts) can build on it without a circle.
 */

/** Escape what a config file or peer wrote before it goes into a message. */
export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 100);
}

/** postconf(5) lists: separated by commas and/or whitespace. */
export function splitList(raw: string): string[] {
  return raw.split(/[\s,]+/).filter((item) => item !== '');
}

/** Postfix time units (postconf(5) "time unit"); a bare number is seconds. `ms` is an extension. */
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A duration in milliseconds, or undefined when the text is not one (the caller checks the range). */
export function parseDuration(raw: string): number | undefined {
  const match = /^(\d{1,10})(ms|s|m|h|d|w)?$/.exec(raw);
  if (!match) return undefined;
  return Number(match[1]) * (TIME_UNITS[match[2] ?? 's'] ?? 1000);
}

/** The shortest exact Postfix spelling of a duration. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = TIME_UNITS[unit] ?? 1;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** One setting as the file wrote it: the value text (continuations joined) and its first line. */
export interface Setting {
  readonly value: string;
  readonly line: number;
}

/**
 * The settings of a config file's text. main.cf rules (postconf(5)): `name = value`; lines whose
 * first non-blank character is `#` and blank lines are ignored; a line starting with whitespace
 * continues the previous value; a `#` inside a value is part of it. Unlike Postfix, a key given
 * twice is an error: nothing is silently ignored (SPEC "Config file"). A name not in `known` is
 * a problem too. Each problem reads `file:line: ...`, in line order.
 */
export function readSettings(text: string, source: string, known: readonly string[]): { settings: Map<string, Setting>; problems: string[] } {
  const problems: string[] = [];
  const settings = new Map<string, Setting>();
  let current: { key: string | undefined; value: string; line: number } | undefined;

  const finish = (): void => {
    if (!current || current.key === undefined) return;
    const previous = settings.get(current.key);
    if (previous) {
      problems.push(`${source}:${current.line}: ${current.key}: set again (first set on line ${previous.line}); remove one`);
    } else {
      settings.set(current.key, { value: current.value.trim(), line: current.line });
    }
  };

  // A UTF-8 byte-order mark, as some Windows editors write one, is not part of the first line
  // (JavaScript's \s matches U+FEFF: it would read as a continuation line).
  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n');
  lines.forEach((rawLine, index) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const lineNumber = index + 1;
    if (/^\s*(#|$)/.test(line)) return;
    if (/^\s/.test(line)) {
      if (!current) problems.push(`${source}:${lineNumber}: continuation line with no setting before it`);
      else current.value += ` ${line.trim()}`;
      return;
    }
    finish();
    const start = settingStart(line, known);
    if ('problem' in start) {
      problems.push(`${source}:${lineNumber}: ${start.problem}`);
      // A line in error still owns its continuation lines: they are not reported again.
      current = { key: undefined, value: '', line: lineNumber };
      return;
    }
    current = { key: start.key, value: start.value, line: lineNumber };
  });
  finish();
  return { settings, problems };
}

/** A line that starts a setting: the key and the value text after `=`, or what is wrong with it. */
function settingStart(line: string, known: readonly string[]): { key: string; value: string } | { problem: string } {
  const match = /^([A-Za-z0-9_]+)\s*=(.*)$/.exec(line);
  if (!match) return { problem: `expected "name = value", got "${printable(line)}"` };
  const name = match[1] ?? '';
  if (known.includes(name)) return { key: name, value: match[2] ?? '' };
  const suggestion = nearestKey(name, known);
  return { problem: `${name}: unknown key${suggestion ? ` (did you mean ${suggestion}?)` : ''}; known keys: ${known.join(', ')}` };
}

/** Levenshtein distance, for "did you mean" on a mistyped key. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function nearestKey(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const key of known) {
    const distance = editDistance(name, key);
    if (distance < bestDistance) {
      best = key;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
