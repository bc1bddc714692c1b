/** The in-process event bus: core → HTTP layer (which turns these into SSE, filtered by scope). */
import { EventEmitter } from 'node:events';
import type { Role } from './config/schema.js';
import type { CameraView, EventView, SiteView, VoiceRecord } from './store/types.js';

/** A new alert (or an escalation) reached these users on the dashboard channel. */
export interface AlertNotice {
  event: EventView;
  level: number;
  recipients: { userId: string; role: Role }[];
}

export interface BusEvents {
  /** New event or escalation: show a pop-up to `recipients` (and refresh lists of anyone in scope). */
  alert: [AlertNotice];
  /** An event changed (acknowledged, rectified, closed, reopened, snapshot arrived). */
  event: [EventView];
  /** Site online/offline or stats changed. */
  site: [SiteView];
  /** Camera status changed. */
  camera: [CameraView & { siteId: string }];
  /** Voice command sent or its status changed. */
  voice: [VoiceRecord];
  /**
   * Live updates may have been missed (the feed from other instances was interrupted and is back):
   * dashboards reload their lists from the store instead of trusting what they were pushed.
   */
  resync: [];
}

export class Bus extends EventEmitter<BusEvents> {
  constructor() {
    super();
    this.setMaxListeners(1000); // one listener per SSE client
  }
}
