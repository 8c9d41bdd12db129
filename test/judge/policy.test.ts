import t from 'tap';
import { parseClientIp } from '../../src/util/ip.js';
import {
  ACTIONS,
  CHECKS,
  MODES,
  actionFor,
  decide,
  effectiveActions,
  findExemption,
  presetActions,
  type Action,
  type Check,
  type Mode,
} from '../../src/judge/policy.js';
import { parseNetwork } from '../../src/util/ip.js';

const ip = parseClientIp('203.0.113.5')!;
const ip6 = parseClientIp('2001:db8::25')!;

/** SPEC "Decision" table, written out cell by cell. */
const TABLE: Record<string, Record<Check, Record<Mode, Action>>> = {
  pass: { fcrdns: { strict: 'dunno', soft: 'dunno', monitor: 'dunno' }, reverse: { strict: 'dunno', soft: 'dunno', monitor: 'dunno' } },
  no_ptr: { fcrdns: { strict: 'reject', soft: 'defer', monitor: 'warn' }, reverse: { strict: 'reject', soft: 'defer', monitor: 'warn' } },
  no_forward: { fcrdns: { strict: 'reject', soft: 'defer', monitor: 'warn' }, reverse: { strict: 'dunno', soft: 'dunno', monitor: 'dunno' } },
  mismatch: { fcrdns: { strict: 'reject', soft: 'defer', monitor: 'warn' }, reverse: { strict: 'dunno', soft: 'dunno', monitor: 'dunno' } },
  'temperror ptr': { fcrdns: { strict: 'defer', soft: 'defer', monitor: 'warn' }, reverse: { strict: 'defer', soft: 'defer', monitor: 'warn' } },
  'temperror forward': { fcrdns: { strict: 'defer', soft: 'defer', monitor: 'warn' }, reverse: { strict: 'dunno', soft: 'dunno', monitor: 'dunno' } },
};

function classified(row: string) {
  if (row === 'temperror ptr') return { result: 'temperror' as const, temperrorStage: 'ptr' as const };
  if (row === 'temperror forward') return { result: 'temperror' as const, temperrorStage: 'forward' as const };
  return { result: row as 'pass' | 'no_ptr' | 'no_forward' | 'mismatch' };
}

t.test('every cell of the SPEC decision table', async (t) => {
  let cells = 0;
  for (const [row, byCheck] of Object.entries(TABLE)) {
    for (const check of CHECKS) {
      for (const mode of MODES) {
        const expected = byCheck[check][mode];
        const verdict = decide(classified(row), ip, { check, mode, overrides: {}, replyHint: '' });
        t.equal(verdict.action, expected, `${row} / check=${check} / mode=${mode}`);
        cells++;
      }
    }
  }
  t.equal(cells, 36);
});

t.test('reply texts match Postfix wording with X.7.25', async (t) => {
  const strict = { check: 'fcrdns' as const, mode: 'strict' as const, overrides: {}, replyHint: '' };
  t.equal(decide({ result: 'mismatch' }, ip, strict).reply, '550 5.7.25 cannot find your hostname, [203.0.113.5]');
  t.equal(decide({ result: 'no_ptr' }, ip, strict).reply, '550 5.7.25 cannot find your hostname, [203.0.113.5]');
  t.equal(decide({ result: 'no_forward' }, ip6, strict).reply, '550 5.7.25 cannot find your hostname, [2001:db8::25]');
  t.equal(
    decide({ result: 'temperror', temperrorStage: 'forward' }, ip, strict).reply,
    '450 4.7.25 cannot find your hostname, [203.0.113.5]',
  );
  const soft = { ...strict, mode: 'soft' as const };
  t.equal(decide({ result: 'no_forward' }, ip, soft).reply, '450 4.7.25 cannot find your hostname, [203.0.113.5]');
  const reverse = { ...strict, check: 'reverse' as const };
  t.equal(decide({ result: 'no_ptr' }, ip, reverse).reply, '550 5.7.25 cannot find your reverse hostname, [203.0.113.5]');
  t.equal(
    decide({ result: 'temperror', temperrorStage: 'ptr' }, ip, reverse).reply,
    '450 4.7.25 cannot find your reverse hostname, [203.0.113.5]',
  );
  t.equal(decide({ result: 'pass' }, ip, strict).reply, 'DUNNO');
  t.equal(decide({ result: 'mismatch' }, ip, reverse).reply, 'DUNNO');
  const monitor = { ...strict, mode: 'monitor' as const };
  t.equal(decide({ result: 'mismatch' }, ip, monitor).reply, 'WARN fcrdns-policyd mismatch: cannot find your hostname, [203.0.113.5]');
  t.equal(
    decide({ result: 'no_ptr' }, ip, { ...monitor, check: 'reverse' }).reply,
    'WARN fcrdns-policyd no_ptr: cannot find your reverse hostname, [203.0.113.5]',
  );
});

t.test('reply_hint is appended to reject and defer texts only', async (t) => {
  const settings = { check: 'fcrdns' as const, mode: 'strict' as const, overrides: {}, replyHint: 'see https://example.org/rdns' };
  t.equal(
    decide({ result: 'no_ptr' }, ip, settings).reply,
    '550 5.7.25 cannot find your hostname, [203.0.113.5]; see https://example.org/rdns',
  );
  t.equal(
    decide({ result: 'temperror', temperrorStage: 'ptr' }, ip, settings).reply,
    '450 4.7.25 cannot find your hostname, [203.0.113.5]; see https://example.org/rdns',
  );
  t.equal(decide({ result: 'no_ptr' }, ip, { ...settings, mode: 'monitor' }).reply, 'WARN fcrdns-policyd no_ptr: cannot find your hostname, [203.0.113.5]');
  t.equal(decide({ result: 'pass' }, ip, settings).reply, 'DUNNO');
});

t.test('replies are always code + enhanced code + text, printable ASCII', async (t) => {
  for (const check of CHECKS) {
    for (const mode of MODES) {
      for (const row of Object.keys(TABLE)) {
        const { reply } = decide(classified(row), ip6, { check, mode, overrides: {}, replyHint: 'x' });
        t.match(reply, /^(DUNNO|WARN .+|450 4\.7\.25 .+|550 5\.7\.25 .+)$/);
        t.match(reply, /^[\x20-\x7e]+$/);
      }
    }
  }
});

t.test('explicit *_action keys override their preset', async (t) => {
  for (const check of CHECKS) {
    for (const mode of MODES) {
      for (const action of ACTIONS) {
        for (const key of ['no_ptr', 'no_forward', 'mismatch'] as const) {
          const actions = effectiveActions({ check, mode, overrides: { [key]: action } });
          t.equal(actionFor({ result: key }, actions), action, `${key}=${action} under ${check}/${mode}`);
          const others = (['no_ptr', 'no_forward', 'mismatch'] as const).filter((other) => other !== key);
          for (const other of others) t.equal(actions[other], presetActions(check, mode)[other]);
        }
      }
      for (const action of ['dunno', 'warn', 'defer'] as const) {
        const actions = effectiveActions({ check, mode, overrides: { temperror: action } });
        t.equal(actionFor({ result: 'temperror', temperrorStage: 'ptr' }, actions), action);
      }
    }
  }
});

t.test('a forward temperror counts only when a forward failure would be acted on', async (t) => {
  const reverseStrict = effectiveActions({ check: 'reverse', mode: 'strict', overrides: {} });
  t.equal(actionFor({ result: 'temperror', temperrorStage: 'forward' }, reverseStrict), 'dunno');
  const reverseWithMismatch = effectiveActions({ check: 'reverse', mode: 'strict', overrides: { mismatch: 'reject' } });
  t.equal(actionFor({ result: 'temperror', temperrorStage: 'forward' }, reverseWithMismatch), 'defer');
  const fcrdnsDunnoTemp = effectiveActions({ check: 'fcrdns', mode: 'strict', overrides: { temperror: 'dunno' } });
  t.equal(actionFor({ result: 'temperror', temperrorStage: 'forward' }, fcrdnsDunnoTemp), 'dunno');
});

t.test('exemptions: pass_recipients, skip_authenticated, skip_networks', async (t) => {
  const settings = {
    skipNetworks: [parseNetwork('10.0.0.0/8')!, parseNetwork('fc00::/7')!],
    passRecipients: ['postmaster', 'abuse'],
    skipAuthenticated: true,
  };
  const base = { client: ip, recipient: 'bob@example.org', saslUsername: '' };
  t.equal(findExemption(base, settings), undefined);
  t.equal(findExemption({ ...base, recipient: 'Postmaster@Example.org' }, settings), 'pass_recipient');
  t.equal(findExemption({ ...base, recipient: 'postmaster' }, settings), 'pass_recipient', 'RFC 5321 bare <postmaster>');
  t.equal(findExemption({ ...base, recipient: 'abuse@example.org' }, settings), 'pass_recipient');
  t.equal(findExemption({ ...base, recipient: 'postmaster-x@example.org' }, settings), undefined);
  t.equal(findExemption({ ...base, saslUsername: 'alice' }, settings), 'authenticated');
  t.equal(findExemption({ ...base, saslUsername: 'alice' }, { ...settings, skipAuthenticated: false }), undefined);
  t.equal(findExemption({ ...base, client: parseClientIp('10.1.2.3')! }, settings), 'skip_network');
  t.equal(findExemption({ ...base, client: parseClientIp('::ffff:10.1.2.3')! }, settings), 'skip_network');
  t.equal(findExemption({ ...base, client: parseClientIp('fd00::1')! }, settings), 'skip_network');
  t.equal(findExemption({ ...base, client: parseClientIp('2001:db8::1')! }, settings), undefined);
  t.equal(findExemption({ ...base, recipient: 'postmaster@x' }, { ...settings, passRecipients: [] }), undefined);
});
