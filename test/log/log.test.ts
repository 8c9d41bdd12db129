/**
 * The decision line: logDecision() assembles it from pino's own parts with the outcome
 * serialised once, and must write exactly what pino's logger.info() would.
 */
import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { createStreamLogger, logDecision, outcomeFields, type OutcomeFields, type RequestFields } from '../../src/log/logger.js';

/** The decision line's fields in SPEC order, as pino would be given them. */
const decisionFields = (request: RequestFields, outcome: OutcomeFields, cached: boolean, durationMs: number) => ({
  client_address: request.clientAddress,
  helo_name: request.heloName,
  instance: request.instance,
  queue_id: request.queueId,
  protocol_state: request.protocolState,
  recipient: request.recipient,
  authenticated: request.saslUsername !== '',
  ...(JSON.parse(`{${outcome.json}}`) as Record<string, unknown>),
  cached,
  duration_ms: Math.round(durationMs * 1000) / 1000,
});

const withoutTime = (line: string) => line.replace(/,"time":"[^"]*"/, '');

function capture(level: 'info' | 'warn' = 'info') {
  const lines: string[] = [];
  const root = createStreamLogger(level, { write: (line: string) => lines.push(line) });
  return { lines, logger: root.child({ conn: 7, peer: '127.0.0.1:40000' }) };
}

const OUTCOMES = [
  outcomeFields({
    result: 'pass',
    ptr: { outcome: 'answer', names: ['mail.example.com'], ignored: [{ name: 'bad name\u0000"', reason: 'invalid hostname' }] },
    forward: [{ name: 'mail.example.com', outcome: 'answer', addresses: ['192.0.2.1'], matched: true }],
    action: 'dunno',
    reply: 'PREPEND Authentication-Results: mx.example.org; iprev=pass policy.iprev=192.0.2.1 (mail.example.com)',
    extra: { helo: 'confirmed', decided_by: 'iprev', generic: { name: 'x', reason: 'address in name', detail: '1-2-3-4' } },
  }),
  outcomeFields({ result: 'temperror', temperrorStage: 'ptr', ptr: { outcome: 'temporary', code: 'ESERVFAIL', names: [], ignored: [] }, forward: [], action: 'defer', reply: '450 4.7.25 cannot find your hostname, [192.0.2.9]' }),
  outcomeFields({ result: 'skipped', reason: 'pass_recipient', action: 'dunno', reply: 'DUNNO' }),
];

const REQUESTS: RequestFields[] = [
  { clientAddress: '192.0.2.1', heloName: 'mail.example.com', instance: 'a1b2.5f8e1e7c.c9ad4.0', queueId: '', protocolState: 'RCPT', recipient: 'bob@example.org', saslUsername: '' },
  // Every character JSON must escape, non-ASCII, and strings past pino's 42-character fast path.
  { clientAddress: '2001:db8::1', heloName: 'h"e\\l\u0001o\n\t\u007f', instance: 'bücher-€', queueId: 'x'.repeat(300), protocolState: `"${'\\'.repeat(50)}"`, recipient: '"o\'k"@ex\u0000', saslUsername: 'alice' },
  // One character JSON escapes at the very start or end of an otherwise plain value, and U+2028.
  { clientAddress: '192.0.2.1', heloName: '"mail.example.com', instance: 'a1b2.0\\', queueId: '\u001f', protocolState: 'RCPT\u2028', recipient: '', saslUsername: 'x' },
];

t.test("logDecision writes exactly the line pino's logger.info writes", async (t) => {
  for (const request of REQUESTS) {
    for (const outcome of OUTCOMES) {
      for (const cached of [true, false]) {
        const ours = capture();
        const pinos = capture();
        const durationMs = cached ? 0.1234567 : 12.5;
        logDecision(ours.logger, request, outcome, cached, durationMs);
        pinos.logger.info(decisionFields(request, outcome, cached, durationMs), 'decision');
        t.equal(ours.lines.length, 1);
        t.equal(withoutTime(ours.lines[0] ?? ''), withoutTime(pinos.lines[0] ?? ''));
        t.match(JSON.parse(ours.lines[0] ?? '{}'), { level: 'info', name: 'fcrdns-policyd', conn: 7, msg: 'decision', duration_ms: cached ? 0.123 : 12.5 });
      }
    }
  }
});

t.test('a lone surrogate (the codec never makes one: bad UTF-8 becomes U+FFFD) is escaped, not mangled', async (t) => {
  const { lines, logger } = capture();
  logDecision(logger, { ...(REQUESTS[0] as RequestFields), instance: 'x\ud800y' }, OUTCOMES[2]!, true, 1);
  t.equal((JSON.parse(lines[0] ?? '{}') as { instance: string }).instance, 'x\ud800y');
});

t.test('logDecision follows the log level', async (t) => {
  const quiet = capture('warn');
  logDecision(quiet.logger, REQUESTS[0] as RequestFields, OUTCOMES[0]!, true, 1);
  t.same(quiet.lines, []);
});

t.test('timestamps are ISO 8601 UTC with milliseconds, as pino.stdTimeFunctions.isoTime writes them', async (t) => {
  const { lines, logger } = capture();
  for (let i = 0; i < 300; i++) logger.info('tick');
  for (const line of lines) {
    const time = (JSON.parse(line) as { time: string }).time;
    t.equal(new Date(time).toISOString(), time);
  }
  t.end();
});

t.test('a decision line stays under 4 KiB whatever DNS and the peer sent, and says what was cut', async (t) => {
  const name = (i: number) => `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${String(i).padStart(40, 'd')}.example`;
  const names = Array.from({ length: 50 }, (_, i) => name(i));
  const addresses = Array.from({ length: 16 }, (_, i) => `2001:db8:ffff:ffff:ffff:ffff:ffff:${i.toString(16)}`);
  const outcome = outcomeFields({
    result: 'pass',
    ptr: {
      outcome: 'answer',
      names,
      ignored: Array.from({ length: 4 }, () => ({ name: '\u0001'.repeat(256), reason: 'invalid hostname' })),
      ignoredCounts: { 'invalid hostname': 4000 },
    },
    forward: names.map((n, i) => ({ name: n, outcome: 'answer', addresses, omitted: 48, matched: i === 30 })),
    action: 'dunno',
    reply: 'DUNNO',
    extra: { helo: 'mismatch', decided_by: 'iprev' },
  });
  t.ok(Buffer.byteLength(outcome.json) <= LIMITS.maxOutcomeJsonBytes, `outcome ${Buffer.byteLength(outcome.json)} bytes`);
  const fields = JSON.parse(`{${outcome.json}}`) as {
    forward: Array<{ name: string; matched: boolean }>;
    forward_omitted: number;
    ptr: { names: string[]; names_omitted?: number; ignored?: unknown; ignored_counts: Record<string, number> };
  };
  t.ok(fields.forward.some((check) => check.matched && check.name === name(30)), 'the matched check is kept');
  t.equal(fields.forward.length + fields.forward_omitted, 50, 'forward checks cut are counted');
  t.equal(fields.ptr.names.length + (fields.ptr.names_omitted ?? 0), 50, 'PTR names cut are counted');
  t.same(fields.ptr.ignored_counts, { 'invalid hostname': 4000 }, 'the counts survive the cut');

  const hostile: RequestFields = {
    clientAddress: '2001:db8::1',
    heloName: '\u0001'.repeat(256),
    instance: '\u0002'.repeat(256),
    queueId: '\u0003'.repeat(256),
    protocolState: '\u0004'.repeat(256),
    recipient: '\u0005'.repeat(256),
    saslUsername: '',
  };
  const { lines, logger } = capture();
  logDecision(logger, hostile, outcome, false, 1);
  const line = lines[0] ?? '';
  t.ok(Buffer.byteLength(line) <= LIMITS.maxDecisionLineBytes, `line ${Buffer.byteLength(line)} bytes`);
  t.match(JSON.parse(line), { request_fields_cut: true, client_address: '2001:db8::1', result: 'pass', msg: 'decision' });

  // Fifty long names that all confirm: the confirmed checks past the first are cut last, and counted.
  const allConfirmed = outcomeFields({
    result: 'pass',
    ptr: { outcome: 'answer', names, ignored: [] },
    forward: names.map((n) => ({ name: n, outcome: 'answer', addresses, omitted: 48, matched: true })),
    action: 'dunno',
    reply: 'DUNNO',
  });
  const confirmedLine = capture();
  logDecision(confirmedLine.logger, REQUESTS[0]!, allConfirmed, false, 1);
  t.ok(Buffer.byteLength(confirmedLine.lines[0] ?? '') <= LIMITS.maxDecisionLineBytes, `all fifty confirmed: line ${Buffer.byteLength(confirmedLine.lines[0] ?? '')} bytes`);
  const confirmed = JSON.parse(confirmedLine.lines[0] ?? '{}') as { forward: Array<{ matched: boolean }>; forward_confirmed_omitted: number };
  t.ok(confirmed.forward.length >= 1 && confirmed.forward.every((check) => check.matched), 'a confirmed check is kept');
  t.equal(confirmed.forward.length + confirmed.forward_confirmed_omitted, 50, 'the confirmed checks cut are counted');

  const ordinary = capture();
  logDecision(ordinary.logger, REQUESTS[0]!, OUTCOMES[0]!, true, 1);
  t.notMatch(ordinary.lines[0] ?? '', /_cut|_omitted/, 'an ordinary line is not cut');
});

/**
 * A stream that takes lines in place, as stdout.ts's LineBatcher does: logDecision writes most
 * lines as bytes straight into its buffer (decision-line.ts's writeInPlace).
 */
function captureInPlace() {
  const lines: string[] = [];
  const buffer = Buffer.alloc(64 * 1024);
  const sink = {
    used: 0,
    room: (bytes: number) => {
      if (sink.used + bytes > buffer.length) sink.used = 0;
      return buffer;
    },
    wrote: (bytes: number) => {
      lines.push(buffer.toString('utf8', sink.used, sink.used + bytes));
      sink.used += bytes;
    },
    write: (line: string) => lines.push(line),
  };
  const root = createStreamLogger('info', sink);
  return { lines, sink, logger: root.child({ conn: 7, peer: '127.0.0.1:40000' }) };
}

t.test('a line written in place has the bytes of the line written as a string', async (t) => {
  const durations = [0, -0, 0.0004, 0.0005, 0.1234567, 1, 1.5, 12.345678, 999.9996, 1e9 + 0.25, 123456.7899, -1, Number.NaN, 1e30];
  const requests: RequestFields[] = [
    ...REQUESTS,
    { ...(REQUESTS[0] as RequestFields), instance: 'x\ud800y' },
    { ...(REQUESTS[0] as RequestFields), heloName: 'tab\there', recipient: '~ !#$%&()*+,-./09:;<=>?@AZ[]^_`az{|}' },
  ];
  for (const request of requests) {
    for (const outcome of OUTCOMES) {
      for (const durationMs of durations) {
        const inPlace = captureInPlace();
        const text = capture();
        logDecision(inPlace.logger, request, outcome, durationMs < 1, durationMs);
        logDecision(text.logger, request, outcome, durationMs < 1, durationMs);
        t.equal(inPlace.lines.length, 1);
        t.equal(withoutTime(inPlace.lines[0] ?? ''), withoutTime(text.lines[0] ?? ''), `${JSON.stringify(request.heloName)} ${durationMs}`);
      }
    }
  }
  // Random durations: the digits written must be String(Math.round(ms * 1000) / 1000).
  const inPlace = captureInPlace();
  for (let i = 0; i < 2000; i++) {
    const durationMs = Math.random() * 10 ** Math.floor(Math.random() * 8);
    logDecision(inPlace.logger, REQUESTS[0] as RequestFields, OUTCOMES[2]!, true, durationMs);
    const logged = /"duration_ms":([^,}]*)/.exec(inPlace.lines[i] ?? '')?.[1];
    if (logged !== String(Math.round(durationMs * 1000) / 1000)) t.fail(`${durationMs} logged as ${logged}`);
  }
  t.ok(inPlace.sink.used > 0, 'the lines went in place');
  const line = JSON.parse(inPlace.lines[0] ?? '{}') as { time: string };
  t.equal(new Date(line.time).toISOString(), line.time, 'the time piece is written too');
});
