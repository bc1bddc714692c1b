/**
 * Child process for the kill -9 test (not a test file itself). Opens the outbox in argv[2], starts
 * an Uplink towards argv[3] (a port where no broker listens), then enqueues events forever, printing
 * `committed <eventId>` after each enqueue returned. The parent SIGKILLs it at a random moment.
 */
import { Outbox } from '../../agent/outbox/outbox.js';
import { eventOutboxMessages } from '../../agent/outbox/event.js';
import { Uplink } from '../../agent/uplink/uplink.js';

const [dir, url] = process.argv.slice(2);
if (!dir || !url) throw new Error('usage: uplink-kill-child.ts <outboxDir> <brokerUrl>');
const outbox = Outbox.open({ dir });
const uplink = new Uplink({ siteId: 'site1', url, outbox, reconnectMinMs: 50, reconnectMaxMs: 200, connectTimeoutMs: 500 });
uplink.start();
const ref = { sha256: 'b'.repeat(64), bytes: 4096 };
let n = 0;
const tick = () => {
  for (let k = 0; k < 5; k++) {
    const id = `k${process.pid}-${n++}`;
    outbox.enqueue(
      eventOutboxMessages({
        event: {
          v: 1, id, siteId: 'site1', cameraId: 'cam1', cameraName: 'c', kind: 'smoking', severity: 1, ruleId: 'r', trackId: n,
          label: 'cigarette', score: 0.8, box: [0, 0, 1, 1], zone: null, startedAt: 1, capturedAt: 2, raisedAt: 3, durationSec: 3,
          frame: { width: 640, height: 360 }, detections: [], snapshots: { annotated: ref, clean: ref },
        },
        annotatedJpeg: Buffer.alloc(4096, n & 0xff),
        cleanJpeg: Buffer.alloc(4096, (n + 1) & 0xff),
      }),
    );
    process.stdout.write(`committed ${id}\n`);
  }
  setImmediate(tick);
};
tick();
