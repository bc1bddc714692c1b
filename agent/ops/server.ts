/**
 * The box's operations endpoint, for the operator's monitoring (systemd watchdog scripts, Prometheus):
 *   GET /healthz  200 while the process serves requests (alive)
 *   GET /readyz   200 when every camera is online and the uplink connected, else 503; JSON says why
 *   GET /metrics  Prometheus text format (agent/ops/metrics.ts)
 * Read-only, no secrets; bound to 127.0.0.1 unless the site config says otherwise.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { childLog } from '../../common/log.js';
import { readiness, type AgentParts } from './metrics.js';

const log = childLog({ module: 'ops' });

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(opts: { host: string; port: number; registry: Registry; parts: AgentParts }): Promise<OpsServer> {
  const startedAt = Date.now();
  const json = (status: number, body: unknown) => ({ status, type: 'application/json; charset=utf-8', body: JSON.stringify(body) });
  const server: Server = createServer((req, res) => {
    const answer = async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return { ...json(405, { error: 'method_not_allowed', message: `${req.method} is not allowed here (GET only)` }), allow: 'GET, HEAD' };
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') return json(200, { status: 'ok', uptimeSec: Math.round((Date.now() - startedAt) / 1000) });
      if (path === '/readyz') {
        const r = readiness(opts.parts);
        return json(r.ready ? 200 : 503, r);
      }
      if (path === '/metrics') return { status: 200, type: opts.registry.contentType, body: await opts.registry.metrics() };
      return json(404, { error: 'not_found', message: `no ${path} here (try /healthz, /readyz, /metrics)` });
    };
    answer().then(
      (a) => {
        res.writeHead(a.status, { 'Content-Type': a.type, 'Cache-Control': 'no-store', ...('allow' in a ? { Allow: a.allow } : {}) });
        res.end(req.method === 'HEAD' ? undefined : a.body);
      },
      (err: Error) => {
        log.error({ err }, 'ops endpoint failed');
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal', message: err.message }));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`health endpoint: cannot listen on ${opts.host}:${opts.port} (${err.code ?? err.message})`)));
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host: opts.host, port }, 'health and metrics endpoint listening');
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
