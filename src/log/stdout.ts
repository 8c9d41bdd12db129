/**
 * The daemon's log output: pino's lines gathered into batches and written to a file descriptor
 * (stdout) by sonic-boom, without ever blocking the answers to Postfix on a slow or gone reader:
 * a bounded backlog past which lines are dropped and counted, errors said once on stderr, and a
 * last flush at exit that gives up on a blocked stdout.
 */
import pino from 'pino';

type SonicBoom = ReturnType<typeof pino.destination>;

/** Bytes of log lines gathered before they go to the file descriptor as one write. */
const LOG_BATCH_BYTES = 64 * 1024;
/** A quiet server's lines still appear within this time. */
const LOG_FLUSH_MS = 250;
/**
 * Log bytes waiting for a stdout nobody reads (a stalled journald, a full pipe) before new
 * lines are dropped: answers to Postfix matter more than log lines, and memory must stay bounded.
 */
const LOG_BACKLOG_BYTES = 4 * 1024 * 1024;
/** The most one write(2) of log lines carries (queued batches are joined up to this). */
const LOG_WRITE_BYTES = 1024 * 1024;
/** At most one stderr warning about dropped log lines this often. */
const LOG_DROP_WARNING_MS = 60_000;
/** How long the last flush at exit may wait for a blocked stdout. */
const LOG_EXIT_FLUSH_MS = 2_000;

/**
 * Gathers pino's lines as UTF-8 in a 64 KiB buffer and hands each full buffer to sonic-boom,
 * which still does the writing (partial writes, EAGAIN, errors). One write(2) per decision was a
 * sixth of the daemon's time under load; sonic-boom's own minLength buffering re-measures its
 * whole pending string on every line; and lines kept as strings until a batch is joined lived
 * long enough to be copied by every young-generation GC. Encoding each line at once leaves it
 * garbage as soon as it is written.
 */
class LineBatcher {
  private batch = Buffer.allocUnsafe(LOG_BATCH_BYTES);
  /** Bytes of the batch in use: where the next line goes. */
  used = 0;

  constructor(private readonly destination: SonicBoom) {}

  write(line: string): void {
    // A UTF-16 code unit takes at most three bytes in UTF-8: make room for the worst case.
    if (this.used + line.length * 3 > this.batch.length) {
      this.flush();
      if (line.length * 3 > this.batch.length) {
        this.send(Buffer.from(line, 'utf8'));
        return;
      }
    }
    this.used += this.batch.write(line, this.used, 'utf8');
  }

  /**
   * The batch, with room for a line of at most `bytes` (<= LOG_BATCH_BYTES) from `used`: the
   * decision line is written into it in place (decision-line.ts), then counted with wrote().
   */
  room(bytes: number): Buffer {
    if (this.used + bytes > this.batch.length) this.flush();
    return this.batch;
  }

  wrote(bytes: number): void {
    this.used += bytes;
  }

  flush(): void {
    if (this.used === 0) return;
    const full = this.batch.subarray(0, this.used);
    this.batch = Buffer.allocUnsafe(LOG_BATCH_BYTES);
    this.used = 0;
    this.send(full);
  }

  flushSync(): void {
    this.flush();
    this.destination.flushSync();
  }

  private send(bytes: Buffer): void {
    try {
      (this.destination as unknown as { write(data: Buffer): boolean }).write(bytes);
    } catch {
      // A destroyed destination (stdout gone): its error handler has said so once already.
    }
  }
}

const exitHooks: Array<() => void> = [];

/**
 * Run `hook` when the process exits, before pino's own exit flush: an exit that did not go
 * through flushLogger() still gets a bounded last flush. One process listener for every logger.
 */
function onExitBeforePino(hook: () => void): void {
  if (exitHooks.length === 0) process.prependListener('exit', () => exitHooks.forEach((run) => run()));
  exitHooks.push(hook);
}

/** Where a logger's lines go, and what flushLogger and the metrics ask of it. */
export interface StdoutWriter {
  /** The stream pino writes each line to. */
  readonly stream: { write(line: string): void };
  /** Log lines dropped because the file descriptor did not keep up. */
  dropped(): number;
  /** Write out what is buffered now; gives up (and throws) when stdout stays blocked. */
  flushSync(): void;
}

/**
 * JSON lines to a file descriptor (stdout by default), in batches flushed at least every 250 ms.
 */
export function openStdout(fd: number): StdoutWriter {
  let exitDeadline = Number.POSITIVE_INFINITY;
  const destination = pino.destination({
    dest: fd,
    sync: false,
    contentMode: 'buffer',
    maxLength: LOG_BACKLOG_BYTES,
    // Batches that queue up while a write is in flight go out together in the next write, up
    // to 1 MiB (sonic-boom's default, 16 KiB, would write one 64 KiB batch per event-loop turn
    // and fall behind a busy loop).
    maxWrite: LOG_WRITE_BYTES,
    // sonic-boom retries a full stdout forever; at exit, give up after LOG_EXIT_FLUSH_MS.
    retryEAGAIN: () => Date.now() < exitDeadline,
  });
  reportErrorsOnce(destination);
  const drops = countDrops(destination);
  const batcher = new LineBatcher(destination);
  const startExitFlush = (): void => {
    if (exitDeadline === Number.POSITIVE_INFINITY) exitDeadline = Date.now() + LOG_EXIT_FLUSH_MS;
  };
  onExitBeforePino(startExitFlush);
  const timer = setInterval(() => batcher.flush(), LOG_FLUSH_MS);
  timer.unref();
  return {
    stream: batcher,
    dropped: () => drops.lines,
    flushSync: () => {
      startExitFlush();
      try {
        batcher.flushSync();
      } catch (error) {
        // stdout stayed blocked: give up on it, so sonic-boom's own flush at process exit
        // (pino registers one) does not wait or throw again.
        destination.destroy();
        throw error;
      }
    },
  };
}

/**
 * A closed or broken stdout (EPIPE when the log reader goes away) must not take the policy
 * service down with it: Postfix would answer 451 for every message. Say so once on stderr.
 */
function reportErrorsOnce(destination: SonicBoom): void {
  let reported = false;
  destination.on('error', (error: NodeJS.ErrnoException) => {
    if (reported) return;
    reported = true;
    try {
      process.stderr.write(`fcrdns-policyd: cannot write logs (${error.code ?? error.message}); still answering requests\n`);
    } catch {
      // stderr is gone too: nothing left to tell.
    }
  });
}

/**
 * Lines dropped are counted (fcrdns_log_lines_dropped_total) and said on stderr, at most once a
 * minute with the running count: stderr goes to the journal apart from stdout's backlog.
 */
function countDrops(destination: SonicBoom): { lines: number } {
  const drops = { lines: 0, lastWarning: Number.NEGATIVE_INFINITY };
  destination.on('drop', (data: Buffer | string) => {
    let lines = 0;
    for (let at = data.indexOf('\n'); at !== -1; at = data.indexOf('\n', at + 1)) lines++;
    drops.lines += Math.max(1, lines);
    const now = Date.now();
    if (now - drops.lastWarning < LOG_DROP_WARNING_MS) return;
    drops.lastWarning = now;
    try {
      process.stderr.write(
        `fcrdns-policyd: stdout is not being read: over ${LOG_BACKLOG_BYTES / 1024 / 1024} MiB of log lines waiting; ` +
          `${drops.lines} lines dropped so far; still answering requests\n`,
      );
    } catch {
      // stderr is gone too: the metric still counts.
    }
  });
  return drops;
}
