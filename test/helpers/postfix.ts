/**
 * A private Postfix instance for end-to-end tests: its own config, queue, data and mailbox
 * directories, chroot off, smtpd on loopback ports, mail delivered to Maildirs. It runs in a
 * private mount namespace whose /etc/resolv.conf points at the test's DNS server, so Postfix's
 * own lookups (reject_unknown_client_hostname) see the test zones without touching the host's
 * resolver configuration.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasCommand } from './requirements.js';

const run = promisify(execFile);

/** Why the end-to-end test cannot run here, or undefined when it can. */
export function postfixMissing(): string | undefined {
  const missing = ['postfix', 'swaks', 'unshare'].filter((command) => !hasCommand(command) && !existsSync(`/usr/sbin/${command}`));
  if (missing.length > 0) return `missing: ${missing.join(', ')} (apt-get install postfix swaks util-linux); .ci/run installs them`;
  if (process.getuid?.() !== 0) return 'Postfix and a private mount namespace need root';
  return undefined;
}

export interface SmtpdService {
  /** A name for the service, e.g. "strict". */
  name: string;
  port: number;
  /** smtpd_recipient_restrictions for this port. */
  recipientRestrictions: string;
  /** Extra main.cf-style overrides for this port (name → value). */
  overrides?: Record<string, string>;
}

export interface PostfixInstance {
  dir: string;
  queueDirectory: string;
  /** Delivered messages for a local part (full text of each file in its Maildir). */
  delivered(localPart: string): string[];
  maillog(): string;
  stop(): Promise<void>;
}

export async function startPostfix(options: {
  services: SmtpdService[];
  nameserver: string;
  mailboxes: string[];
}): Promise<PostfixInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-postfix-'));
  // Postfix's daemons run as postfix and nobody: they must be able to enter the directory.
  chmodSync(dir, 0o755);
  const etc = join(dir, 'etc');
  const spool = join(dir, 'spool');
  const data = join(dir, 'data');
  const mail = join(dir, 'mail');
  for (const path of [etc, spool, data, mail]) mkdirSync(path, { recursive: true });
  const postfixUid = Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim());
  chownSync(data, postfixUid, -1);
  chownSync(mail, 65534, 65534);

  const restrictionParams = options.services.map((service) => `${service.name}_recipient_restrictions = ${service.recipientRestrictions}`);
  writeFileSync(
    join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${spool}`,
      `data_directory = ${data}`,
      'command_directory = /usr/sbin',
      'daemon_directory = /usr/lib/postfix/sbin',
      'meta_directory = /etc/postfix',
      'shlib_directory = /usr/lib/postfix',
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = mx.example.org',
      'mydomain = example.org',
      'myorigin = example.org',
      'mydestination =',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      // Only the instance itself is "ours": test clients come from 127.0.0.2 and up.
      'mynetworks = 127.0.0.1/32',
      'virtual_mailbox_domains = example.org',
      `virtual_mailbox_base = ${mail}`,
      `virtual_mailbox_maps = texthash:${join(etc, 'vmailbox')}`,
      'virtual_uid_maps = static:65534',
      'virtual_gid_maps = static:65534',
      'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
      'smtpd_recipient_restrictions = reject_unauth_destination',
      `maillog_file = ${join(dir, 'maillog')}`,
      `maillog_file_prefixes = ${dir}`,
      'smtputf8_enable = no',
      'biff = no',
      ...restrictionParams,
      '',
    ].join('\n'),
  );
  writeFileSync(join(etc, 'vmailbox'), options.mailboxes.map((box) => `${box}@example.org ${box}/`).join('\n') + '\n');
  const smtpdLines = options.services.flatMap((service) => [
    `127.0.0.1:${service.port} inet n - n - - smtpd`,
    `  -o smtpd_recipient_restrictions=$${service.name}_recipient_restrictions`,
    ...Object.entries(service.overrides ?? {}).map(([name, value]) => `  -o ${name}=${value}`),
  ]);
  writeFileSync(
    join(etc, 'master.cf'),
    [
      ...smtpdLines,
      'pickup    unix  n - n 60 1 pickup',
      'cleanup   unix  n - n - 0 cleanup',
      'qmgr      unix  n - n 300 1 qmgr',
      'rewrite   unix  - - n - - trivial-rewrite',
      'bounce    unix  - - n - 0 bounce',
      'defer     unix  - - n - 0 bounce',
      'trace     unix  - - n - 0 bounce',
      'verify    unix  - - n - 1 verify',
      'flush     unix  n - n 1000? 0 flush',
      'proxymap  unix  - - n - - proxymap',
      'smtp      unix  - - n - - smtp',
      'relay     unix  - - n - - smtp',
      'showq     unix  n - n - - showq',
      'error     unix  - - n - - error',
      'retry     unix  - - n - - error',
      'discard   unix  - - n - - discard',
      'local     unix  - n n - - local',
      'virtual   unix  - n n - - virtual',
      'anvil     unix  - - n - 1 anvil',
      'scache    unix  - - n - 1 scache',
      'postlog   unix-dgram n - n - 1 postlogd',
      '',
    ].join('\n'),
  );
  if (existsSync('/etc/postfix/dynamicmaps.cf')) writeFileSync(join(etc, 'dynamicmaps.cf'), readFileSync('/etc/postfix/dynamicmaps.cf'));
  writeFileSync(join(dir, 'resolv.conf'), `nameserver ${options.nameserver}\noptions timeout:2 attempts:1\n`);
  // No /etc/hosts entries for the test clients: their names come from DNS only.
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');

  const start = [
    `mount --bind ${join(dir, 'resolv.conf')} /etc/resolv.conf`,
    `mount --bind ${join(dir, 'hosts')} /etc/hosts`,
    `exec postfix -c ${etc} start`,
  ].join(' && ');
  try {
    await run('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', start], { timeout: 30_000 });
  } catch (error) {
    const log = existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : '(no maillog)';
    throw new Error(`postfix did not start: ${String(error)}\n${log}`);
  }
  // Ready once every smtpd port accepts connections.
  const { connect } = await import('node:net');
  for (const service of options.services) {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(service.port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`postfix is not listening on ${service.port}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    dir,
    queueDirectory: spool,
    delivered(localPart: string) {
      const folder = join(mail, localPart, 'new');
      if (!existsSync(folder)) return [];
      return readdirSync(folder).map((file) => readFileSync(join(folder, file), 'utf8'));
    },
    maillog: () => (existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : ''),
    async stop() {
      await run('postfix', ['-c', etc, 'stop'], { timeout: 30_000 }).catch(() => undefined);
    },
  };
}

export interface SwaksResult {
  /** The server's reply to RCPT TO, e.g. `550 5.7.25 <bob@example.org>: Recipient address rejected: …`. */
  rcptReply: string;
  /** The reply to the end of DATA, when the message was sent. */
  dataReply?: string;
  transcript: string;
}

/** One SMTP transaction with swaks from a loopback source address. */
export async function swaks(options: {
  port: number;
  from: string;
  to: string;
  helo?: string;
  quitAfterRcpt?: boolean;
  header?: string;
}): Promise<SwaksResult> {
  const args = [
    '--server', `127.0.0.1:${options.port}`,
    '--local-interface', options.from,
    '--from', 'alice@sender.example.com',
    '--to', options.to,
    '--helo', options.helo ?? 'client.example.com',
    '--timeout', '30',
    ...(options.quitAfterRcpt ? ['--quit-after', 'RCPT'] : []),
    ...(options.header ? ['--header', options.header] : []),
  ];
  let transcript: string;
  try {
    ({ stdout: transcript } = await run('swaks', args, { timeout: 60_000 }));
  } catch (error) {
    // swaks exits non-zero when the server rejects; the transcript is still on stdout.
    transcript = String((error as { stdout?: string }).stdout ?? '');
  }
  const lines = transcript.split('\n');
  const replyAfter = (command: RegExp): string | undefined => {
    const index = lines.findIndex((line) => command.test(line));
    if (index === -1) return undefined;
    const reply = lines.slice(index + 1).find((line) => /^(<-|<\*\*) /.test(line));
    return reply?.replace(/^(<-|<\*\*) +/, '');
  };
  const rcptReply = replyAfter(/^ -> RCPT TO:/);
  if (!rcptReply) throw new Error(`no RCPT reply in swaks transcript:\n${transcript}`);
  const dataReply = replyAfter(/^ -> \.$/);
  return { rcptReply, ...(dataReply ? { dataReply } : {}), transcript };
}
