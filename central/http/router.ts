/** A small method + path router: `/api/events/:id/ack` patterns, 404 for unknown paths, 405 for wrong methods. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';

export type Handler<C> = (ctx: C, params: Record<string, string>) => Promise<void>;

interface Route<C> {
  method: string;
  re: RegExp;
  keys: string[];
  handler: Handler<C>;
}

export class Router<C> {
  private readonly routes: Route<C>[] = [];

  add(method: string, pattern: string, handler: Handler<C>): this {
    const keys: string[] = [];
    const re = new RegExp(
      '^' +
        pattern
          .split('/')
          .map((seg) => (seg.startsWith(':') ? (keys.push(seg.slice(1)), '([^/]+)') : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('/') +
        '$',
    );
    this.routes.push({ method, re, keys, handler });
    return this;
  }

  /** Finds the handler or throws 404 / 405. Params are percent-decoded (malformed → 400). */
  match(method: string, pathname: string): { handler: Handler<C>; params: Record<string, string> } {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.re.exec(pathname);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => {
        try {
          params[k] = decodeURIComponent(m[i + 1]!);
        } catch {
          throw new HttpError(400, 'bad_request', k);
        }
      });
      return { handler: r.handler, params };
    }
    if (pathMatched) throw new HttpError(405, 'method_not_allowed');
    throw new HttpError(404, 'not_found');
  }
}

export type { IncomingMessage, ServerResponse };
