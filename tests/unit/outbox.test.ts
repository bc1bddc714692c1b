import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Outbox, OutboxError } from '../../agent/outbox/outbox.js';
import { eventOutboxMessages } from '../../agent/outbox/event.js';
import type { EventMessage } from '../../protocol/messages.js';

let dir: string;
const open: Outbox[] = [];
function mk(opts: Partial<Parameters<typeof Outbox.open>[0]> = {}): Outbox {
  const ob = Outbox.open({ dir, ...opts });
  open.push(ob);
  return ob;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'outbox-test-'));
});
afterEach(() => {
  for (const ob of open.splice(0)) ob.close();
  rmSync(dir, { recursive: true, force: true });
});

function sampleEvent(id: string, siteId = 'site1'): EventMessage {
  const ref = { sha256: 'a'.repeat(64), bytes: 10 };
  return {
    v: 1, id, siteId, cameraId: 'cam1', cameraName: '后厨 1', kind: 'no_mask', severity: 2, ruleId: 'r1', trackId: 1,
    label: 'face', score: 0.9, box: [1, 2, 3, 4], zone: null, startedAt: 1, capturedAt: 2, raisedAt: 3, durationSec: 3,
    frame: { width: 640, height: 360 }, detections: [], snapshots: { annotated: ref, clean: ref },
  };
}

describe('Outbox', () => {
  it('uses WAL and FULL sync in <dir>/outbox.sqlite', () => {
    const ob = mk();
    expect(ob.file).toBe(path.join(dir, 'outbox.sqlite'));
    ob.close();
    const db = new Database(path.join(dir, 'outbox.sqlite'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('enqueues an event as snapshots then event JSON, peeks in id order, acks', () => {
    const ob = mk();
    const msgs = eventOutboxMessages({ event: sampleEvent('e1'), annotatedJpeg: Buffer.alloc(1000, 1), cleanJpeg: Buffer.alloc(900, 2) });
    const ids = ob.enqueue(msgs);
    expect(ids).toHaveLength(3);
    expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);
    const rows = ob.peek(10);
    expect(rows.map((r) => r.topic)).toEqual([
      'bk/v1/site/site1/snapshot/e1/annotated',
      'bk/v1/site/site1/snapshot/e1/clean',
      'bk/v1/site/site1/event',
    ]);
    expect(rows[0]!.droppable).toBe(true);
    expect(rows[2]!.droppable).toBe(false);
    expect(rows[2]!.qos).toBe(1);
    expect(JSON.parse(rows[2]!.payload.toString()).id).toBe('e1');
    expect(ob.pending()).toBe(3);
    expect(ob.pendingBytes()).toBe(1900 + rows[2]!.payload.length);
    expect(ob.peek(10, ids[0]).map((r) => r.id)).toEqual(ids.slice(1));
    expect(ob.ack(ids[1]!)).toBe(true);
    expect(ob.ack(ids[1]!)).toBe(false);
    expect(ob.peek(10).map((r) => r.id)).toEqual([ids[0], ids[2]]);
    expect(ob.ackMany([ids[0]!, ids[2]!, 9999])).toBe(2);
    expect(ob.pending()).toBe(0);
    expect(ob.pendingBytes()).toBe(0);
    expect(ob.oldestAgeMs()).toBeNull();
  });

  it('the transaction is all or nothing', () => {
    const ob = mk();
    expect(() => ob.enqueue([{ topic: 'a/b', payload: 'x' }, { topic: '', payload: 'y' }])).toThrow(/messages\[1\]\.topic/);
    expect(() => ob.enqueue([{ topic: 'a/#', payload: 'x' }])).toThrow(/wildcard/);
    expect(ob.pending()).toBe(0);
  });

  it('reports the age of the oldest row', () => {
    let t = 1_000_000;
    const ob = mk({ now: () => t });
    ob.enqueue([{ topic: 'a', payload: 'x' }]);
    t += 5000;
    ob.enqueue([{ topic: 'b', payload: 'y' }]);
    t += 1000;
    expect(ob.oldestAgeMs()).toBe(6000);
  });

  it('records attempts and survives reopen', () => {
    const ob = mk();
    const [id] = ob.enqueue([{ topic: 't', payload: Buffer.from([0, 1, 2, 255]), retain: true, qos: 0 }]);
    ob.recordAttempt(id!, 'Connection closed');
    ob.close();
    const ob2 = mk();
    const [row] = ob2.peek(1);
    expect(row).toMatchObject({ id, topic: 't', qos: 0, retain: true, attempts: 1, lastError: 'Connection closed' });
    expect([...row!.payload]).toEqual([0, 1, 2, 255]);
    expect(ob2.pendingBytes()).toBe(4);
    expect(ob2.integrityCheck()).toBe('ok');
    // ids keep growing after acks (AUTOINCREMENT): a new row never reuses an acked id
    ob2.ack(id!);
    const [id2] = ob2.enqueue([{ topic: 't', payload: 'z' }]);
    expect(id2).toBeGreaterThan(id!);
  });

  it('over the cap drops the oldest snapshots, never an event JSON', () => {
    const ob = mk({ maxPendingBytes: 10_000 });
    const dropped: { topic: string }[] = [];
    ob.on('dropped', (rows: { topic: string }[]) => dropped.push(...rows));
    for (let i = 0; i < 5; i++) {
      ob.enqueue(eventOutboxMessages({ event: sampleEvent(`e${i}`), annotatedJpeg: Buffer.alloc(2000), cleanJpeg: Buffer.alloc(1500) }));
    }
    expect(ob.pendingBytes()).toBeLessThanOrEqual(10_000);
    const rows = ob.peek(100);
    const events = rows.filter((r) => !r.droppable).map((r) => JSON.parse(r.payload.toString()).id);
    expect(events).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    // the newest event keeps both images; the dropped ones are the oldest
    expect(rows.some((r) => r.topic.endsWith('/e4/annotated'))).toBe(true);
    expect(dropped[0]!.topic).toBe('bk/v1/site/site1/snapshot/e0/annotated');
    expect(dropped.every((d) => d.topic.includes('/snapshot/'))).toBe(true);
  });

  it('keeps non-droppable rows even when they alone exceed the cap', () => {
    const ob = mk({ maxPendingBytes: 100 });
    ob.enqueue([{ topic: 'ev', payload: Buffer.alloc(80) }]);
    ob.enqueue([{ topic: 'img', payload: Buffer.alloc(50), droppable: true }]);
    ob.enqueue([{ topic: 'ev', payload: Buffer.alloc(80) }]);
    expect(ob.peek(10).map((r) => r.topic)).toEqual(['ev', 'ev']);
    expect(ob.pendingBytes()).toBe(160);
  });

  it('moves a corrupt database aside and starts fresh', () => {
    const file = path.join(dir, 'outbox.sqlite');
    writeFileSync(file, Buffer.concat([Buffer.from('this is not sqlite at all '), Buffer.alloc(8192, 7)]));
    const ob = mk();
    expect(ob.pending()).toBe(0);
    ob.enqueue([{ topic: 't', payload: 'x' }]);
    expect(ob.pending()).toBe(1);
    const aside = readdirSync(dir).filter((f) => f.startsWith('outbox.sqlite.corrupt-'));
    expect(aside).toHaveLength(1);
  });

  it('moves aside a database whose pages are damaged', () => {
    const ob = mk();
    for (let i = 0; i < 200; i++) ob.enqueue([{ topic: `t${i}`, payload: Buffer.alloc(3000, i) }]);
    ob.close();
    open.length = 0;
    const file = path.join(dir, 'outbox.sqlite');
    const db = new Database(file);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    // scribble over an interior page of the b-tree (page 2 is the table root)
    const fd = Buffer.alloc(pageSize, 0xff);
    const h = openSync(file, 'r+');
    writeSync(h, fd, 0, pageSize, pageSize * 1);
    closeSync(h);
    const ob2 = mk();
    expect(ob2.pending()).toBe(0);
    expect(readdirSync(dir).some((f) => f.startsWith('outbox.sqlite.corrupt-'))).toBe(true);
  });

  it('names the file when the directory cannot be used', () => {
    const blocker = path.join(dir, 'blocker');
    writeFileSync(blocker, 'x');
    expect(() => Outbox.open({ dir: path.join(blocker, 'sub') })).toThrow(OutboxError);
    expect(() => Outbox.open({ dir: path.join(blocker, 'sub') })).toThrow(/blocker/);
  });

  it('behaves like a FIFO queue under random enqueue/ack sequences', () => {
    const ob = mk();
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant('enq' as const), n: fc.integer({ min: 1, max: 4 }) }), fc.record({ op: fc.constant('ack' as const), k: fc.nat(10) })), { maxLength: 40 }),
        (ops) => {
          ob.ackMany(ob.peek(10_000).map((r) => r.id));
          const model: number[] = [];
          for (const o of ops) {
            if (o.op === 'enq') model.push(...ob.enqueue(Array.from({ length: o.n }, (_, i) => ({ topic: `t/${i}`, payload: 'p' }))));
            else if (model.length > 0) {
              const id = model[o.k % model.length]!;
              expect(ob.ack(id)).toBe(true);
              model.splice(model.indexOf(id), 1);
            }
            expect(ob.peek(10_000).map((r) => r.id)).toEqual(model);
            expect(ob.pending()).toBe(model.length);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
