/**
 * Where the throttle state lives (issue 27's `throttle_store`): `memory` (the default), a Redis or
 * Valkey server as `redis://host[:port][/db]` or `rediss://…` (TLS), or the absolute path of its
 * unix socket. Pure: the config layer calls these and reports the problem with file:line; the
 * daemon connects (src/daemon/throttle-redis.ts). A password never sits in the URL — it would be
 * in the config dump and in logs — but in a file of its own (`throttle_store_password_file`).
 */
export type ThrottleStoreTarget =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis';
      /** The URL as node-redis takes it (no password in it). */
      readonly url: string;
      readonly tls: boolean;
      /** For logs and the config dump: scheme, user, host, port, database. */
      readonly display: string;
    }
  | { readonly kind: 'socket'; readonly path: string; readonly display: string };

/** sun_path holds 108 bytes with its terminating NUL (unix(7)). */
const MAX_SOCKET_PATH_BYTES = 107;
/** Redis' `databases` setting is an int; 16 by default. */
const MAX_DATABASE = 2 ** 31 - 1;

const EXPECTED = 'throttle_store must be memory, redis://host[:port][/db], rediss://host[:port][/db] or the absolute path of a unix socket';

/** The store a `throttle_store` value names, or a problem in words. */
export function parseThrottleStore(text: string): ThrottleStoreTarget | string {
  const value = text.trim();
  if (value === '' || value === 'memory') return { kind: 'memory' };
  if (value.startsWith('/')) return socketTarget(value);
  if (/^rediss?:\/\//i.test(value)) return urlTarget(value);
  return EXPECTED;
}

function socketTarget(path: string): ThrottleStoreTarget | string {
  if (path.includes('\0')) return 'the socket path has a NUL byte';
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) return `the socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes (unix(7) sun_path)`;
  if (path.endsWith('/')) return 'the socket path names a directory';
  return { kind: 'socket', path, display: `unix:${path}` };
}

function urlTarget(text: string): ThrottleStoreTarget | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not a URL: ${EXPECTED}`;
  }
  const tls = url.protocol.toLowerCase() === 'rediss:';
  if (url.password !== '') return 'a password in the URL would be shown in the config dump and logs: put it in throttle_store_password_file';
  if (url.hostname === '') return 'the URL names no host';
  if (url.search !== '' || url.hash !== '') return 'the URL takes no query or fragment';
  const database = url.pathname === '' || url.pathname === '/' ? undefined : url.pathname.slice(1);
  if (database !== undefined && (!/^\d{1,10}$/.test(database) || Number(database) > MAX_DATABASE)) return `the URL's path must be a database number, not ${url.pathname}`;
  const user = url.username === '' ? '' : `${url.username}@`;
  const port = url.port === '' ? '6379' : url.port;
  const display = `${tls ? 'rediss' : 'redis'}://${user}${url.hostname}:${port}${database === undefined ? '' : `/${database}`}`;
  return { kind: 'redis', url: display, tls, display };
}

/** A problem with a `throttle_store_password_file` value, or undefined; the daemon reads the file. */
export function checkPasswordFilePath(path: string): string | undefined {
  if (path.includes('\0')) return 'the password file path has a NUL byte';
  if (!path.startsWith('/')) return 'the password file must be an absolute path (the daemon may run from another directory)';
  if (path.endsWith('/')) return 'the password file path names a directory';
  return undefined;
}
