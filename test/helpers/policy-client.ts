/** A minimal Postfix-like policy client for tests: sends requests, reads replies, over a real socket. */
import net from 'node:net';

export function policyRequest(attributes: Record<string, string>): string {
  const full: Record<string, string> = {
    request: 'smtpd_access_policy',
    protocol_state: 'RCPT',
    protocol_name: 'ESMTP',
    helo_name: 'mail.example.com',
    queue_id: '',
    sender: 'alice@example.com',
    recipient: 'bob@example.org',
    instance: `${Math.random().toString(16).slice(2)}.1`,
    sasl_username: '',
    ...attributes,
  };
  return `${Object.entries(full)
    .map(([name, value]) => `${name}=${value}`)
    .join('\n')}\n\n`;
}

export type Target = { port: number; host?: string } | { path: string };

export class PolicyClient {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;
  readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(target: Target): Promise<PolicyClient> {
    return new Promise((resolve, reject) => {
      const socket =
        'path' in target ? net.connect(target.path) : net.connect({ port: target.port, host: target.host ?? '127.0.0.1' });
      socket.once('connect', () => resolve(new PolicyClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Write bytes in chunks of `chunkSize`, each in its own write. */
  async send(data: string | Buffer, chunkSize = 65536): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let i = 0; i < bytes.length; i += chunkSize) {
      this.socket.write(bytes.subarray(i, i + chunkSize));
      if (chunkSize < bytes.length) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** The next reply's action text; rejects if the server closes first or after timeoutMs. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end !== -1) {
        const reply = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        if (!reply.startsWith('action=')) throw new Error(`malformed reply: ${JSON.stringify(reply)}`);
        return reply.slice('action='.length);
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no reply in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async ask(attributes: Record<string, string>, chunkSize?: number): Promise<string> {
    await this.send(policyRequest(attributes), chunkSize);
    return this.reply();
  }

  /** Resolves true once the server has closed the connection (false on timeout); fails if it sent anything. */
  async closedWithoutReply(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.buffer !== '') throw new Error(`server replied: ${JSON.stringify(this.buffer)}`);
    return this.closed;
  }

  get unread(): string {
    return this.buffer;
  }

  close(): void {
    this.socket.destroy();
  }
}
