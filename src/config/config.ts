/**
 * The configuration file: Postfix main.cf syntax (postconf(5)), every key's default in one
 * table, validation that names file, line, key and what is allowed, and the effective
 * settings the daemon runs on. Pure: the caller reads the file.
 *
 * The module the rest of the code imports from. The parts, each owning one thing: the key table
 * (keys.ts), the file format (parse.ts), one validator per kind of value (kinds.ts), validation
 * and the Config (validate.ts), the effective-settings dump (effective.ts).
 */
import { CONFIG_KEYS, type Config, type Values } from './keys.js';
import { readSettings } from './parse.js';
import { buildConfig, validate } from './validate.js';

export { CONFIG_KEYS, DEFAULT_CONFIG_PATH, KEY_DOCS, LOG_LEVELS, defaultValues, type Config, type ConfigKey, type LogLevel } from './keys.js';
export type { ListenAddress } from './kinds.js';
export { formatDuration, splitList } from './parse.js';
export { formatEffective } from './effective.js';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/**
 * Parse a config file's text (parse.ts: the main.cf rules, and why a key given twice is an error).
 * Throws ConfigError listing every problem as `file:line: key: message`: the file's lines first,
 * then each key's value, then the rules between keys.
 */
export function parseConfig(text: string, source: string): Config {
  const read = readSettings(text, source, CONFIG_KEYS);
  const checked = validate(read.settings, source);
  const problems = [...read.problems, ...checked.problems];
  if (problems.length > 0) throw new ConfigError(problems);
  // No problem: every key has its value.
  return buildConfig(checked.values as Values, source);
}

/** The built-in defaults, as `npm start` on a fresh clone runs. */
export function defaultConfig(): Config {
  return parseConfig('', '(built-in defaults)');
}
