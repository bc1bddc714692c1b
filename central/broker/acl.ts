/**
 * The broker ACL, as pure functions (the embedded broker calls them; the Mosquitto ACL file expresses
 * the same rules). A site publishes only under its own `<prefix>/site/<siteId>/…` (never
 * `voice/command`) and subscribes only to its own `voice/command`; a recipient subscribes only to
 * `<prefix>/user/<userId>/#` and publishes nothing; central may do everything.
 */
import { parseSiteTopic, topics } from '../../protocol/topics.js';

export type Principal =
  | { kind: 'central' }
  | { kind: 'site'; siteId: string }
  | { kind: 'user'; userId: string };

export function canPublish(p: Principal, topic: string, prefix: string): boolean {
  if (p.kind === 'central') return true;
  if (p.kind === 'user') return false;
  const t = parseSiteTopic(topic, prefix);
  return !!t && t.siteId === p.siteId && t.kind !== 'voice/command';
}

export function canSubscribe(p: Principal, filter: string, prefix: string): boolean {
  if (p.kind === 'central') return true;
  if (p.kind === 'site') return filter === topics(prefix).voiceCommand(p.siteId);
  const own = `${prefix}/user/${p.userId}/`;
  return filter.startsWith(own) && !filter.startsWith('$');
}

/** Only central may use client ids with this prefix (so nobody can kick central off the broker). */
export const CENTRAL_CLIENT_PREFIX = 'bk-central-';
