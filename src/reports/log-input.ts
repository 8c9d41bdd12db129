/**
 * The lines of log files for `report` and `replay`: plain or gzip-compressed (as logrotate leaves
 * them; told by the gzip magic bytes, not the name), or standard input (`-`), in the order given.
 * Streaming with bounded memory: a line longer than MAX_LOG_LINE_BYTES is skipped as it comes
 * (counted by the caller as too long), never gathered whole, so a multi-gigabyte file without a
 * newline cannot fill the heap.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { MAX_LOG_LINE_BYTES } from './decision-record.js';

export interface InputLine {
  readonly text: string;
  /** False for a last line that no newline ended. */
  readonly complete: boolean;
  /** True when the line was longer than MAX_LOG_LINE_BYTES (`text` is then empty). */
  readonly tooLong: boolean;
  /** The input it came from (`-` for standard input) and its 1-based line number there. */
  readonly source: string;
  readonly number: number;
}

export interface InputProgress {
  /** Called at most once a second while one input is read, after its first second. */
  (source: string, bytes: number, lines: number): void;
}

async function isGzip(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await file.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await file.close();
  }
}

/**
 * Lines of one stream, split on LF (a CR before it is dropped), a chunk's lines at a time: one
 * promise per chunk, not per line, which was a tenth of the time of a report.
 */
async function* splitLines(stream: Readable, source: string, counted: (bytes: number) => void): AsyncGenerator<InputLine[]> {
  let number = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    counted(chunk.length);
    const batch: InputLine[] = [];
    let from = 0;
    for (let at = chunk.indexOf(0x0a, from); at !== -1; at = chunk.indexOf(0x0a, from)) {
      if (skipping || pendingBytes + (at - from) > MAX_LOG_LINE_BYTES) {
        batch.push({ text: '', complete: true, tooLong: true, source, number: ++number });
      } else {
        pending.push(chunk.subarray(from, at));
        let text = pending.length === 1 ? (pending[0] as Buffer).toString('utf8') : Buffer.concat(pending).toString('utf8');
        if (text.endsWith('\r')) text = text.slice(0, -1);
        batch.push({ text, complete: true, tooLong: false, source, number: ++number });
      }
      pending = [];
      pendingBytes = 0;
      skipping = false;
      from = at + 1;
    }
    if (from < chunk.length && !skipping) {
      pendingBytes += chunk.length - from;
      if (pendingBytes > MAX_LOG_LINE_BYTES) {
        skipping = true;
        pending = [];
      } else pending.push(chunk.subarray(from));
    }
    if (batch.length > 0) yield batch;
  }
  if (skipping) yield [{ text: '', complete: false, tooLong: true, source, number: ++number }];
  else if (pendingBytes > 0) yield [{ text: Buffer.concat(pending).toString('utf8'), complete: false, tooLong: false, source, number: ++number }];
}

/**
 * Every line of every source (`-` is standard input), in order, in batches. A source that cannot be opened
 * is reported through `unreadable` and skipped.
 */
export async function* readLogLines(
  sources: readonly string[],
  options: { stdin?: Readable; progress?: InputProgress; unreadable?: (source: string, why: string) => void } = {},
): AsyncGenerator<InputLine[]> {
  for (const source of sources.length === 0 ? ['-'] : sources) {
    let stream: Readable;
    try {
      if (source === '-') stream = options.stdin ?? process.stdin;
      else {
        const gzip = await isGzip(source);
        const file = createReadStream(source, { highWaterMark: 256 * 1024 });
        stream = gzip ? file.pipe(createGunzip()) : file;
        // An error of the file stream is the pipe's error too.
        if (gzip) file.once('error', (error) => stream.destroy(error));
      }
    } catch (error) {
      options.unreadable?.(source, (error as NodeJS.ErrnoException).code ?? String(error));
      continue;
    }
    const started = Date.now();
    let lastProgress = started;
    let bytes = 0;
    let lines = 0;
    try {
      for await (const batch of splitLines(stream, source, (count) => (bytes += count))) {
        lines += batch.length;
        if (options.progress) {
          const now = Date.now();
          if (now - started >= 1000 && now - lastProgress >= 1000) {
            lastProgress = now;
            options.progress(source === '-' ? 'standard input' : source, bytes, lines);
          }
        }
        yield batch;
      }
    } catch (error) {
      options.unreadable?.(source, (error as NodeJS.ErrnoException).code ?? (error as Error).message);
    }
  }
}
