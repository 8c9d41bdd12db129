/**
 * How the `check` command shows its reports: a block per address with a ✓/✗ per step and the
 * records as `dig` would print them, then the findings in the order to act on them; or a stable
 * JSON document (schema version 1, documented in docs/check.md) for scripts.
 */
import type { Config } from '../config/config.js';
import type { AddressReport, CheckReport } from './diagnose.js';
import type { ForwardCheck } from '../dns/iprev.js';
import { LIMITS } from '../config/limits.js';
import { jsonSafe } from '../reports/report-render.js';

export interface RenderOptions {
  /** ANSI colours: only when writing to a terminal. */
  color: boolean;
}

const paint = (code: number, enabled: boolean) => (text: string) => (enabled ? `\x1b[${code}m${text}\x1b[0m` : text);

/** Strings from DNS are validated hostnames, but the ignored ones are shown escaped. */
const quoted = (text: string) => JSON.stringify(text);

/** The first LIMITS.maxCheckShownAddresses of an answer, the client's own among them when it is there. */
function shownAddresses(addresses: readonly string[], client: string): readonly string[] {
  if (addresses.length <= LIMITS.maxCheckShownAddresses) return addresses;
  const shown = addresses.slice(0, LIMITS.maxCheckShownAddresses);
  if (addresses.includes(client) && !shown.includes(client)) shown[shown.length - 1] = client;
  return shown;
}

function addressBlock(report: AddressReport, options: RenderOptions): string[] {
  const ok = paint(32, options.color)('✓');
  const bad = paint(31, options.color)('✗');
  const warn = paint(33, options.color)('!');
  const { iprev, ip } = report;
  const recordType = ip.family === 4 ? 'A' : 'AAAA';
  const lines: string[] = [`  ${paint(1, options.color)(ip.text)}${report.source === 'argument' ? '' : `  (${report.source} record)`}`];
  if (iprev.ptr.outcome === 'answer' && iprev.ptr.names.length > 0) {
    for (const name of iprev.ptr.names) lines.push(`    ${ok} PTR   ${iprev.reverseName}.  PTR  ${name}.`);
  } else if (iprev.ptr.outcome === 'temporary') {
    lines.push(`    ${warn} PTR   ${iprev.reverseName}.  lookup failed temporarily (${iprev.ptr.code ?? 'error'})`);
  } else if (iprev.ptr.ignored.length === 0) {
    lines.push(`    ${bad} PTR   ${iprev.reverseName}.  no PTR record (${iprev.ptr.code ?? 'no data'})`);
  }
  for (const item of iprev.ptr.ignored) {
    lines.push(`    ${bad} PTR   ${iprev.reverseName}.  PTR  ${quoted(item.name)}  ignored: ${item.reason}`);
  }
  // Only a few unusable names are kept as examples (a hostile answer may hold thousands).
  const counts = Object.entries(iprev.ptr.ignoredCounts ?? {});
  const unshown = counts.reduce((sum, [, count]) => sum + (count ?? 0), 0) - iprev.ptr.ignored.length;
  if (unshown > 0) {
    const byReason = counts.map(([reason, count]) => `${reason}: ${count}`).join(', ');
    lines.push(`    ${bad} PTR   ${iprev.reverseName}.  and ${unshown} more names ignored (in all: ${byReason})`);
  }
  for (const check of iprev.forward) {
    if (check.outcome === 'answer') {
      for (const address of shownAddresses(check.addresses, ip.text)) {
        const match = address === ip.text;
        lines.push(`    ${match ? ok : bad} ${recordType.padEnd(5)} ${check.name}.  ${recordType}  ${address}${match ? '  <- matches' : ''}`);
      }
      const more = check.addresses.length - LIMITS.maxCheckShownAddresses;
      if (more > 0) lines.push(`    ${bad} ${recordType.padEnd(5)} ${check.name}.  … and ${more.toLocaleString('en-US')} more ${recordType} records`);
      if (check.addresses.length === 0) lines.push(`    ${bad} ${recordType.padEnd(5)} ${check.name}.  no ${recordType} record`);
    } else if (check.outcome === 'not_found') {
      lines.push(`    ${bad} ${recordType.padEnd(5)} ${check.name}.  no ${recordType} record (${check.code ?? ''})`);
    } else {
      lines.push(`    ${warn} ${recordType.padEnd(5)} ${check.name}.  lookup failed temporarily (${check.code ?? 'error'})`);
    }
  }
  const outcome = iprev.result === 'pass' ? ok : iprev.result === 'temperror' ? warn : bad;
  const stage = iprev.temperrorStage ? ` (${iprev.temperrorStage} lookup)` : '';
  const action = report.skipped ? `dunno (this daemon skips the client: ${report.skipped})` : `${report.action} -> action=${report.reply}`;
  lines.push(`    ${outcome} result: ${iprev.result}${stage}; action: ${action}`);
  return lines;
}

/** Human-readable report of every target, then the findings. */
export function renderText(report: CheckReport, config: Config, options: RenderOptions): string {
  const { targets, status, findings } = report;
  const lines: string[] = [`config: ${config.source} (check=${config.check}, mode=${config.mode})`, ''];
  for (const target of targets) {
    if (target.host) {
      const host = target.host;
      lines.push(paint(1, options.color)(host.name));
      for (const [type, lookup] of [['A', host.a], ['AAAA', host.aaaa]] as const) {
        if (lookup.outcome === 'answer') {
          for (const address of lookup.addresses) lines.push(`  ${host.name}.  ${type.padEnd(4)}  ${address}`);
          if (lookup.omitted) lines.push(`  ${host.name}.  ${type.padEnd(4)}  … and ${lookup.omitted.toLocaleString('en-US')} more, not checked`);
        } else lines.push(`  ${host.name}.  ${type.padEnd(4)}  ${lookup.outcome === 'not_found' ? 'none' : 'lookup failed temporarily'} (${lookup.code ?? ''})`);
      }
      if (target.addressesOmitted) {
        lines.push(
          `  checked ${target.addresses.length} of ${(target.addresses.length + target.addressesOmitted).toLocaleString('en-US')} addresses ` +
            `(at most ${LIMITS.maxCheckHostAddresses} of a host); check the others by IP`,
        );
      }
      lines.push('');
    }
    for (const address of target.addresses) lines.push(...addressBlock(address, options), '');
  }
  if (findings.length === 0) {
    lines.push(`${paint(32, options.color)('✓')} Nothing to fix: every address is forward-confirmed.`);
  } else {
    lines.push('Findings, in the order to act on them:');
    findings.forEach((finding, index) => {
      const mark =
        finding.severity === 'permanent' ? paint(31, options.color)('✗') : paint(33, options.color)(finding.severity === 'temporary' ? '!' : '?');
      lines.push(`  ${index + 1}. ${mark} ${finding.message}`, `     Fix: ${finding.fix}`);
    });
  }
  lines.push('', `Status: ${status === 'pass' ? 'pass (exit 0)' : status === 'permanent' ? 'permanent failure (exit 1)' : 'temporary failure only (exit 2)'}`);
  return `${lines.join('\n')}\n`;
}

/** A forward check for JSON: the addresses shown as in text, the rest counted in `omitted`. */
function forwardJson(check: ForwardCheck, client: string): ForwardCheck {
  const shown = shownAddresses(check.addresses, client);
  const omitted = check.addresses.length - shown.length + (check.omitted ?? 0);
  return { ...check, addresses: shown, ...(omitted > 0 ? { omitted } : {}) };
}

/** JSON schema version 1 (docs/check.md, "check --json"). */
export function renderJson(report: CheckReport, config: Config, helo: string | undefined): string {
  const { targets, status, findings } = report;
  // Ignored PTR names may hold any character: escaped as report --json escapes them.
  return `${jsonSafe(JSON.stringify(
    {
      schema: 1,
      status,
      findings,
      check: config.check,
      mode: config.mode,
      ...(helo !== undefined ? { helo } : {}),
      targets: targets.map((target) => ({
        target: target.target,
        kind: target.kind,
        ...(target.host ? { host: target.host } : {}),
        ...(target.addressesOmitted ? { addresses_omitted: target.addressesOmitted } : {}),
        addresses: target.addresses.map((address) => ({
          ip: address.ip.text,
          family: address.ip.family,
          source: address.source,
          reverse_name: address.iprev.reverseName,
          ptr: address.iprev.ptr,
          forward: address.iprev.forward.map((check) => forwardJson(check, address.ip.text)),
          result: address.iprev.result,
          ...(address.iprev.temperrorStage ? { temperror_stage: address.iprev.temperrorStage } : {}),
          confirmed_names: address.iprev.confirmedNames,
          action: address.action,
          reply: address.reply,
          ...(address.skipped ? { skipped: address.skipped } : {}),
        })),
        findings: target.findings,
      })),
    },
    null,
    2,
  ))}\n`;
}
