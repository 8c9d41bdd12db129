/**
 * From the file's settings to the Config: each key's text (or its default) through the validator
 * of its kind — the key table says which — then the checks that span keys, then the Config the
 * daemon runs on. A new key is a row in keys.ts; only a new rule between keys belongs here.
 */
import { effectiveActions, type Action, type ActionTable } from './presets.js';
import { isFailure } from './kinds.js';
import { CONFIG_KEYS, KEYS, type Config, type ConfigKey, type KeyEntry, type Values } from './keys.js';
import { printable, type Setting } from './parse.js';
import { effectiveSettings } from './effective.js';

/**
 * Every key's value, or a problem per key whose text is invalid (`file:line: key: ...`, or
 * `file (default): key: ...` for a key the file does not set), in table order, then the problems
 * between keys. Invalid keys have no value.
 */
export function validate(settings: ReadonlyMap<string, Setting>, source: string): { values: Partial<Values>; problems: string[] } {
  const problems: string[] = [];
  const values: Partial<Record<ConfigKey, unknown>> = {};
  for (const key of CONFIG_KEYS) {
    const given = settings.get(key);
    const text = given?.value ?? KEYS[key].default;
    const parsed: unknown = KEYS[key].kind.parse(text);
    if (isFailure(parsed)) {
      const where = given ? `${source}:${given.line}` : `${source} (default)`;
      problems.push(`${where}: ${key}: invalid value "${printable(text)}": ${parsed.error}`);
      continue;
    }
    values[key] = parsed;
  }
  problems.push(...crossKeyProblems(values as Partial<Values>, settings, source));
  return { values: values as Partial<Values>, problems };
}

/** The rules between keys, checked on the keys that are valid on their own. */
function crossKeyProblems(values: Partial<Values>, settings: ReadonlyMap<string, Setting>, source: string): string[] {
  const problems: string[] = [];
  if (values.authres_header === true && values.authserv_id === '') {
    const where = settings.get('authres_header');
    problems.push(
      `${source}:${where?.line ?? 0}: authres_header: needs authserv_id (RFC 8601 §2.5: the name of this server, e.g. authserv_id = mx.example.org)`,
    );
  }
  return problems;
}

/** The Config of valid values: each key's value in its field, the `*_action` keys set as overrides of the preset. */
export function buildConfig(values: Values, source: string): Config {
  const fields: Record<string, unknown> = {};
  const overrides: Partial<ActionTable> = {};
  for (const key of CONFIG_KEYS) {
    const entry: KeyEntry = KEYS[key];
    if ('field' in entry) fields[entry.field] = values[key];
    else if (values[key] !== undefined) overrides[entry.override] = values[key] as Action;
  }
  // Complete: keys.ts fails to compile when a Config field has no row in the table.
  const settings = { source, ...fields, overrides } as Omit<Config, 'effective'>;
  return { ...settings, effective: effectiveSettings(values, effectiveActions(settings)) };
}
