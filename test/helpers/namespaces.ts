/** Network namespaces the tests make themselves: loopback only, so nothing a test starts reaches another host. */
import { spawn, type ChildProcess } from 'node:child_process';

/** A network namespace held open by a sleeping process (lo up, nothing else); `path` is for nsenter --net. */
export async function privateNetwork(): Promise<{ path: string; close: () => void }> {
  const holder: ChildProcess = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && echo up && exec sleep 100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolveUp, reject) => {
    holder.stdout?.once('data', () => resolveUp());
    holder.once('exit', (code) => reject(new Error(`unshare --net exited ${code}`)));
  });
  return { path: `/proc/${holder.pid}/ns/net`, close: () => holder.kill('SIGKILL') };
}
