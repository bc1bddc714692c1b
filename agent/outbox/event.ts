/** Build the outbox rows of one violation event: snapshots first, then the event JSON. */
import { topics, DEFAULT_PREFIX } from '../../protocol/topics.js';
import type { EventMessage } from '../../protocol/messages.js';
import type { OutboxMessage } from './outbox.js';

export interface EventEvidence {
  event: EventMessage;
  annotatedJpeg: Buffer;
  cleanJpeg: Buffer;
  /** MQTT topic prefix (uplink.topicPrefix); default `bk/v1`. */
  topicPrefix?: string;
}

/**
 * The three messages of an event, in publish order: annotated JPEG, clean JPEG (both droppable under
 * the outbox's size cap), then the event JSON (never dropped). Enqueue them in one call.
 */
export function eventOutboxMessages({ event, annotatedJpeg, cleanJpeg, topicPrefix = DEFAULT_PREFIX }: EventEvidence): OutboxMessage[] {
  const t = topics(topicPrefix);
  return [
    { topic: t.snapshot(event.siteId, event.id, 'annotated'), payload: annotatedJpeg, qos: 1, droppable: true },
    { topic: t.snapshot(event.siteId, event.id, 'clean'), payload: cleanJpeg, qos: 1, droppable: true },
    { topic: t.event(event.siteId), payload: JSON.stringify(event), qos: 1 },
  ];
}
