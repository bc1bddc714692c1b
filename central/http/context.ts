/** One HTTP request as the handlers see it (server.ts builds it, sse.ts and the routes read it). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UserRecord } from '../core.js';
import type { Lang } from './errors.js';
import type { Session } from './session.js';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  ip: string;
  lang: Lang;
  session: Session | null;
  user: UserRecord | null;
}
