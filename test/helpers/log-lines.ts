/** Log lines as the daemon writes them, for the log tools' tests (report, replay, their bounds). */

/** A decision line with the given fields replaced or added. */
export const decision = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    level: 'info',
    time: '2026-12-01T10:00:00.000Z',
    name: 'fcrdns-policyd',
    conn: 1,
    client_address: '192.0.2.13',
    helo_name: 'mail.example.com',
    instance: 'a.1',
    queue_id: '',
    protocol_state: 'RCPT',
    recipient: 'bob@example.org',
    authenticated: false,
    result: 'mismatch',
    ptr: { outcome: 'answer', names: ['mismatch.example.com'] },
    forward: [{ name: 'mismatch.example.com', outcome: 'answer', addresses: ['192.0.2.99'], matched: false }],
    helo: 'unchecked',
    decided_by: 'iprev',
    action: 'warn',
    reply: 'WARN x',
    cached: false,
    duration_ms: 3.5,
    msg: 'decision',
    ...overrides,
  });
