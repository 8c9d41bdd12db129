import t from 'tap';
import { CONFIG_KEYS, ConfigError, defaultConfig, defaultValues, formatEffective, parseConfig, type Config } from '../../src/config/config.js';

function problemsOf(text: string, source = '/etc/fcrdns-policyd/test.conf'): string[] {
  try {
    parseConfig(text, source);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

function effective(config: Config): Record<string, string> {
  return Object.fromEntries(config.effective);
}

t.test('built-in defaults are the SPEC defaults', async (t) => {
  const config = defaultConfig();
  const values = effective(config);
  t.same(Object.keys(values), CONFIG_KEYS, 'every key is printed, in table order');
  t.equal(values.listen, '127.0.0.1:10040');
  t.equal(values.listen_allow, '127.0.0.0/8, ::1/128');
  t.equal(values.check, 'fcrdns');
  t.equal(values.mode, 'soft');
  t.equal(values.no_ptr_action, 'defer');
  t.equal(values.temperror_action, 'defer');
  t.match(values.skip_networks, /127\.0\.0\.0\/8.*10\.0\.0\.0\/8.*172\.16\.0\.0\/12.*192\.168\.0\.0\/16.*100\.64\.0\.0\/10.*169\.254\.0\.0\/16.*fc00::\/7.*fe80::\/10/);
  t.equal(values.pass_recipients, 'postmaster, abuse');
  t.equal(values.skip_authenticated, 'yes');
  t.equal(values.dns_servers, '');
  t.equal(values.dns_timeout, '2s');
  t.equal(values.dns_tries, '2');
  t.equal(values.max_ptr_names, '10');
  t.equal(values.cache_size, '100000');
  t.equal(values.cache_max_ttl, '1h');
  t.equal(values.ptr_ttl, '15m');
  t.equal(values.negative_ttl, '5m');
  t.equal(values.temperror_ttl, '30s');
  t.equal(values.log_level, 'info');
  t.ok(Number(values.max_connections) >= 1000, 'max_connections holds thousands of idle Postfix connections');
  t.equal(values.reply_hint, '');
  t.same(Object.keys(defaultValues()), CONFIG_KEYS);
  t.match(formatEffective(config), /^listen = 127\.0\.0\.1:10040\n/);
  t.match(formatEffective(config), /\nmetrics_listen =\nmetrics_allow = 127\.0\.0\.0\/8, ::1\/128\nthrottle_rate = 20\/hour\n[\s\S]*throttle_store = memory\n[\s\S]*throttle_store_timeout = 50ms\n$/);
});

t.test('main.cf syntax: comments, blank lines, continuation, CRLF, spacing', async (t) => {
  const config = parseConfig(
    [
      '# a comment',
      '',
      '   # an indented comment',
      'mode=strict',
      'skip_networks = 10.0.0.0/8,',
      '    192.168.0.0/16',
      '\t2001:db8::/32',
      'reply_hint = see https://example.org/rdns#why',
      'check   =   reverse\r',
      'pass_recipients = postmaster abuse, hostmaster',
    ].join('\n'),
    'x.conf',
  );
  t.equal(config.mode, 'strict');
  t.equal(config.check, 'reverse');
  t.same(config.skipNetworks.map((network) => network.text), ['10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32']);
  t.equal(config.replyHint, 'see https://example.org/rdns#why', 'a # inside a value is part of it, as in main.cf');
  t.same(config.passRecipients, ['postmaster', 'abuse', 'hostmaster']);
});

/** For each key: values that must parse (with the effective text they print as) and values that must not. */
const KEY_CASES: Record<string, { good: Array<[string, string]>; bad: Array<[string, RegExp]> }> = {
  listen: {
    good: [['127.0.0.1:10040', '127.0.0.1:10040'], ['[::1]:10041', '[::1]:10041'], ['localhost:9999', 'localhost:9999'], ['unix:/run/fcrdns.sock', 'unix:/run/fcrdns.sock']],
    bad: [['127.0.0.1', /port is required/], ['127.0.0.1:70000', /0 to 65535/], ['unix:relative', /absolute path/], ['[nonsense]:1', /host:port|IPv6/]],
  },
  listen_mode: { good: [['0600', '0600'], ['660', '0660']], bad: [['0999', /octal/], ['rw', /octal/]] },
  listen_allow: { good: [['192.0.2.0/24, ::1', '192.0.2.0/24, ::1'], ['', '']], bad: [['192.0.2.0/33', /not an address or CIDR/], ['example.com', /not an address/]] },
  check: { good: [['fcrdns', 'fcrdns'], ['REVERSE', 'reverse']], bad: [['forward', /expected one of: fcrdns, reverse/]] },
  mode: { good: [['monitor', 'monitor'], ['strict', 'strict']], bad: [['hard', /expected one of: monitor, soft, strict/]] },
  no_ptr_action: { good: [['reject', 'reject'], ['WARN', 'warn'], ['', 'defer']], bad: [['ok', /expected one of: dunno, warn, throttle, defer, reject/]] },
  no_forward_action: { good: [['dunno', 'dunno']], bad: [['hold', /expected one of/]] },
  mismatch_action: { good: [['defer', 'defer']], bad: [['discard', /expected one of/]] },
  temperror_action: { good: [['warn', 'warn'], ['dunno', 'dunno']], bad: [['reject', /never cause a permanent reject/]] },
  skip_networks: { good: [['', ''], ['198.51.100.7', '198.51.100.7']], bad: [['10.0.0.0/8 bogus', /"bogus" is not an address/]] },
  pass_recipients: { good: [['Postmaster', 'postmaster'], ['', '']], bad: [['postmaster@example.org', /without @/]] },
  skip_authenticated: { good: [['no', 'no'], ['yes', 'yes']], bad: [['maybe', /yes or no/]] },
  dns_servers: {
    good: [['127.0.0.1', '127.0.0.1:53'], ['127.0.0.1:5353, [::1]:53', '127.0.0.1:5353, [::1]:53']],
    bad: [['resolver.example', /must be an IP address/], ['127.0.0.1:0', /1 to 65535/]],
  },
  dns_timeout: { good: [['5', '5s'], ['500ms', '500ms'], ['1m', '1m']], bad: [['fast', /duration/], ['2h', /between/], ['-1s', /duration/]] },
  dns_tries: { good: [['1', '1'], ['3', '3']], bad: [['0', /whole number from 1 to 10/], ['two', /whole number/]] },
  max_ptr_names: { good: [['1', '1'], ['50', '50']], bad: [['51', /from 1 to 50/], ['0', /from 1 to 50/]] },
  cache_size: { good: [['1000', '1000']], bad: [['0', /whole number/], ['1e5', /whole number/]] },
  cache_max_ttl: { good: [['2d', '2d'], ['3600', '1h']], bad: [['1ms', /between/], ['5y', /duration/]] },
  ptr_ttl: { good: [['0', '0s'], ['1w', '1w']], bad: [['soon', /duration/]] },
  negative_ttl: { good: [['90s', '90s']], bad: [['30x', /duration/]] },
  temperror_ttl: { good: [['10s', '10s']], bad: [['2d', /between/]] },
  log_level: { good: [['debug', 'debug'], ['silent', 'silent']], bad: [['verbose', /expected one of: fatal, error, warn, info, debug, trace, silent/]] },
  max_connections: { good: [['10000', '10000']], bad: [['0', /whole number/], ['lots', /whole number/]] },
  reply_hint: { good: [['see https://example.org/rdns', 'see https://example.org/rdns']], bad: [['caf\u00e9', /printable ASCII/], ['x'.repeat(300), /at most/]] },
  authres_header: { good: [['no', 'no']], bad: [['sometimes', /yes or no/]] },
  authserv_id: { good: [['MX.Example.org.', 'mx.example.org'], ['', '']], bad: [['not a host', /host name/]] },
  generic_action: { good: [['reject', 'reject'], ['warn', 'warn']], bad: [['', /expected one of: dunno, warn, throttle, defer, reject/]] },
  generic_level: { good: [['aggressive', 'aggressive']], bad: [['paranoid', /expected one of: conservative, aggressive/]] },
  helo_mismatch_action: { good: [['defer', 'defer']], bad: [['bounce', /expected one of/]] },
  pass_names: { good: [['.Example.net, mx.partner.org', '.example.net, mx.partner.org'], ['', '']], bad: [['*.example.net', /not a host name or \.domain/]] },
  metrics_listen: { good: [['127.0.0.1:9425', '127.0.0.1:9425'], ['[::1]:9425', '[::1]:9425'], ['', '']], bad: [['9425', /port is required/]] },
  metrics_allow: {
    good: [['192.0.2.0/24 2001:db8::/32', '192.0.2.0/24, 2001:db8::/32'], ['', '']],
    bad: [['192.0.2.1/24', /host bits set: write the network 192\.0\.2\.0\/24/], ['prometheus.example', /not an address or CIDR network/]],
  },
  throttle_rate: { good: [['3/hour', '3/hour'], ['20 / Minutes', '20/minute'], ['1000/second', '1000/second']], bad: [['20', /N\/hour/], ['0/hour', /from 1 to 1000/], ['5/week', /N\/day/]] },
  throttle_burst: { good: [['1', '1']], bad: [['0', /whole number from 1 to 1000/]] },
  throttle_prefix_ipv4: { good: [['16', '16']], bad: [['33', /whole number from 8 to 32/]] },
  throttle_prefix_ipv6: { good: [['48', '48']], bad: [['129', /whole number from 16 to 128/]] },
  throttle_store: {
    good: [['memory', 'memory'], ['', 'memory'], ['redis://mx-state.example:6380/2', 'redis://mx-state.example:6380/2'], ['/run/valkey/valkey.sock', 'unix:/run/valkey/valkey.sock']],
    bad: [['redis://:secret@host', /password_file/], ['mysql://host', /throttle_store must be/]],
  },
  throttle_store_password_file: { good: [['/etc/fcrdns-policyd/redis.pass', '/etc/fcrdns-policyd/redis.pass'], ['', '']], bad: [['redis.pass', /absolute/]] },
  throttle_store_timeout: { good: [['20ms', '20ms'], ['1s', '1s']], bad: [['5s', /1ms/]] },
};

t.test('throttle is an action for every failure class but temperror', async (t) => {
  for (const key of ['no_ptr_action', 'no_forward_action', 'mismatch_action', 'generic_action', 'helo_mismatch_action']) {
    t.same(problemsOf(`${key} = throttle\n`), [], `${key} = throttle`);
  }
  t.match(problemsOf('temperror_action = throttle\n')[0], /says nothing about the sender, so it is not throttled/);
});

t.test('authres_header = yes needs authserv_id', async (t) => {
  const problems = problemsOf('mode = strict\nauthres_header = yes\n');
  t.equal(problems.length, 1);
  t.match(problems[0], /test\.conf:2: authres_header: needs authserv_id/);
  t.equal(parseConfig('authres_header = yes\nauthserv_id = mx.example.org\n', 'x').authservId, 'mx.example.org');
});

t.test('every key: valid values and every error case with file:line', async (t) => {
  t.same(Object.keys(KEY_CASES).sort(), [...CONFIG_KEYS].sort(), 'the cases cover every key');
  for (const [key, { good, bad }] of Object.entries(KEY_CASES)) {
    for (const [value, printed] of good) {
      const config = parseConfig(`# line 1\n${key} = ${value}\n`, 'good.conf');
      t.equal(effective(config)[key], printed, `${key} = ${value}`);
    }
    for (const [value, message] of bad) {
      const problems = problemsOf(`# line 1\n\n${key} = ${value}\n`);
      t.equal(problems.length, 1, `${key} = ${value} is one error`);
      t.match(problems[0], new RegExp(`^/etc/fcrdns-policyd/test\\.conf:3: ${key}: invalid value`), `${key} = ${value} names file, line and key`);
      t.match(problems[0], message, `${key} = ${value}: says what is allowed`);
    }
  }
});

t.test('unknown keys name the nearest known key', async (t) => {
  const problems = problemsOf('mode = strict\nmsimatch_action = reject\n');
  t.equal(problems.length, 1);
  t.match(problems[0], /^\/etc\/fcrdns-policyd\/test\.conf:2: msimatch_action: unknown key \(did you mean mismatch_action\?\)/);
  const far = problemsOf('totally_unrelated_setting = 1\n');
  t.notMatch(far[0], /did you mean/);
  t.match(far[0], /known keys: listen, /);
});

t.test('structural errors: no "=", stray continuation, key set twice, all reported at once', async (t) => {
  const problems = problemsOf('  orphan continuation\nmode strict\ncheck = fcrdns\ncheck = reverse\ndns_tries = 0\n');
  t.equal(problems.length, 4);
  t.match(problems[0], /test\.conf:1: continuation line with no setting before it/);
  t.match(problems[1], /test\.conf:2: expected "name = value", got "mode strict"/);
  t.match(problems[2], /test\.conf:4: check: set again \(first set on line 3\)/);
  t.match(problems[3], /test\.conf:5: dns_tries: invalid value "0"/);
});

t.test('control characters in a bad value are escaped in the message', async (t) => {
  const problems = problemsOf('mode = \x1b[31mred\n');
  t.match(problems[0], /\\x1b\[31mred/);
  t.notMatch(problems[0], /\x1b/);
});

t.test('presets and overrides show in the effective settings', async (t) => {
  const config = parseConfig('check = reverse\nmode = strict\nmismatch_action = warn\n', 'p.conf');
  const values = effective(config);
  t.equal(values.no_ptr_action, 'reject');
  t.equal(values.no_forward_action, 'dunno');
  t.equal(values.mismatch_action, 'warn');
  t.equal(values.temperror_action, 'defer');
  t.same(config.overrides, { mismatch: 'warn' });
});

t.test('networks with host bits set are an error naming the network meant (Postfix warns)', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['skip_networks', '192.0.2.128/2', '192.0.0.0/2'],
    ['listen_allow', '127.0.0.0/8, 10.1.2.3/8', '10.0.0.0/8'],
    ['metrics_allow', '2001:db8::1/64', '2001:db8::/64'],
    ['skip_networks', '::ffff:192.0.2.1/120', '192.0.2.0/24'],
    ['skip_networks', '172.16.5.0/12', '172.16.0.0/12'],
  ];
  for (const [key, value, meant] of cases) {
    const problems = problemsOf(`mode = soft\n${key} = ${value}\n`);
    t.equal(problems.length, 1, `${key} = ${value}`);
    t.match(problems[0], `/etc/fcrdns-policyd/test.conf:2: ${key}: invalid value`, 'file:line and key');
    t.match(problems[0], `host bits set: write the network ${meant}`, `meant ${meant}`);
  }
  for (const good of ['192.0.2.0/24', '192.0.2.1', '192.0.2.1/32', '0.0.0.0/0', '::/0', '2001:db8::1', 'fe80::/10', '::ffff:192.0.2.0/120']) {
    t.same(problemsOf(`skip_networks = ${good}\n`), [], `${good} has no host bits`);
  }
});
