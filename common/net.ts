/** Free loopback ports for the processes the project starts (simulated cameras, demo, benchmark, tests). */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1, or `preferred` when it is free (closed again before returning; small race accepted). */
export function freeTcpPort(preferred = 0): Promise<number> {
  const attempt = (port: number) =>
    new Promise<number>((res, rej) => {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(port, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() => (addr && typeof addr === 'object' ? res(addr.port) : rej(new Error('no port'))));
      });
    });
  return preferred ? attempt(preferred).catch(() => attempt(0)) : attempt(0);
}

/**
 * `n` distinct free UDP ports on 127.0.0.1. The sockets stay bound until all are picked, so the
 * ports differ from each other (picked one by one, the kernel may hand the same port out twice).
 */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = [] as ReturnType<typeof createSocket>[];
  try {
    for (let i = 0; i < n; i++) {
      const s = createSocket('udp4');
      socks.push(s);
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.bind(0, '127.0.0.1', () => res());
      });
    }
    return socks.map((s) => s.address().port);
  } finally {
    await Promise.all(socks.map((s) => new Promise<void>((res) => s.close(() => res()))));
  }
}
