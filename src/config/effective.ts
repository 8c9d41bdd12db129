/**
 * The effective settings: every key with the value the daemon runs on, as text, in table order —
 * what `config` prints, and what a reload compares to say what it changed (reload.ts).
 */
import type { ActionTable } from './presets.js';
import { CONFIG_KEYS, KEYS, type Config, type KeyEntry, type Values } from './keys.js';

export function effectiveSettings(values: Values, actions: ActionTable): Array<readonly [string, string]> {
  return CONFIG_KEYS.map((key) => {
    const entry: KeyEntry = KEYS[key];
    // An empty `*_action` still has an action in force, the check/mode preset's: show that one.
    return [key, 'override' in entry ? actions[entry.override] : entry.kind.show(values[key])] as const;
  });
}

/** `postconf`-style text: one `key = value` line per key. */
export function formatEffective(config: Config): string {
  return config.effective.map(([key, value]) => (value === '' ? `${key} =` : `${key} = ${value}`)).join('\n') + '\n';
}
