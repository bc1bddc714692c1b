export { Outbox, OutboxError, type OutboxMessage, type OutboxOptions, type OutboxRow, type Qos } from './outbox.js';
export { eventOutboxMessages, type EventEvidence } from './event.js';
