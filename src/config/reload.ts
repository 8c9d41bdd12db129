/**
 * What a reload (SIGHUP) may accept beyond a valid configuration, and what it says it changed.
 * A file caught while an editor or a deploy tool writes it is empty or cut short, and it parses:
 * every key it lacks goes back to its default (mode = monitor → soft defers real mail,
 * dns_servers → the system's). The daemon already runs on a good configuration, so a file that
 * looks unfinished is refused and the running one kept. Pure: the caller reads the file.
 */
import type { Config } from './config.js';

/** Why this config file text looks unfinished, or undefined when it does not. */
export function unfinishedFileProblem(text: string, source: string): string | undefined {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (body.trim() === '') {
    return `${source}: is empty: a reload needs the whole configuration (an empty file would put every key back to its default); the running configuration stays`;
  }
  const settings = body.split('\n').filter((line) => /^[^\s#]/.test(line));
  if (settings.length === 0) {
    return `${source}: has no setting, only comments and blank lines: a reload needs the whole configuration; the running configuration stays`;
  }
  if (!body.endsWith('\n')) {
    const lastLine = body.split('\n').length;
    return (
      `${source}:${lastLine}: the last line does not end in a newline: the file may be half-written ` +
      '(a cut value such as 192.0.2.128/2 still parses); finish it and reload again; the running configuration stays'
    );
  }
  return undefined;
}

export interface SettingChange {
  readonly key: string;
  readonly old: string;
  readonly new: string;
  /**
   * A change of who is judged, how, or what the answer is: the mode and check, an action, the
   * resolver (dns_*), an exemption or a network list. Logged at warn: it changes mail flow.
   */
  readonly weighty: boolean;
}

/** Keys whose change is logged at warn (see SettingChange.weighty). */
const WEIGHTY = /^(mode|check|[a-z_]+_action|dns_[a-z_]+|skip_networks|skip_authenticated|listen_allow|metrics_allow|pass_[a-z_]+)$/;

/** Every key whose effective value differs between two configurations, in key-table order. */
export function settingChanges(previous: Config, next: Config): SettingChange[] {
  const before = new Map(previous.effective);
  const changes: SettingChange[] = [];
  for (const [key, value] of next.effective) {
    const old = before.get(key) ?? '';
    if (old !== value) changes.push({ key, old, new: value, weighty: WEIGHTY.test(key) });
  }
  return changes;
}
