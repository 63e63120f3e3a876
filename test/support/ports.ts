import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. For servers that cannot
 * bind port 0 themselves (redis-server, openssl ocsp); servers of ours bind 0.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Waits until something listens on `port`, asking the kernel (`ss`) rather than
 * connecting: a bare connect-and-close makes openssl 3.0's OCSP responder spin.
 */
export async function waitForListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    if (out.trim().length > 0) return;
    await sleep(25);
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
}
