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

/** A free UDP port on 127.0.0.1. */
export function freeUdpPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    s.once('error', rej);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => res(port));
    });
  });
}
