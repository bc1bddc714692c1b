/**
 * Keyframe sampling on RTP packets of H.264 (RFC 6184) or H.265 (RFC 7798): the receiving half of a
 * still camera's ingest (rtsp-receiver.ts). Of every packet only the 12-byte RTP header and the first
 * payload bytes are read; an access unit (the packets of one RTP timestamp) is assembled only when a
 * keyframe is due, and it is passed on only if it holds one (H.264 IDR, H.265 IRAP). Output: Annex-B
 * byte stream with the latest parameter sets before the keyframe and an access unit delimiter after
 * it, so that ffmpeg's raw-stream parser hands the picture to the decoder at once instead of waiting
 * for the next access unit seconds later.
 */

import { keyframeGapSec } from './ffmpeg.js';

export type VideoCodec = 'H264' | 'H265';

const START = Buffer.from([0, 0, 0, 1]);
/** Access unit delimiters (any picture type). */
const AUD: Record<VideoCodec, Buffer> = { H264: Buffer.from([0, 0, 0, 1, 0x09, 0xf0]), H265: Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50]) };

interface CodecRules {
  type(nal: Buffer | Uint8Array, at?: number): number;
  isKey(type: number): boolean;
  /** Parameter set slot (VPS 0, SPS 1, PPS 2), or -1. */
  paramSlot(type: number): number;
  aggregate: number;
  fragment: number;
  /** Bytes before the first aggregated NAL / the fragment data; offset of the FU header. */
  headerLen: number;
  /** The NAL header of a fragmented unit, rebuilt from the payload header and the FU header. */
  fuNalHeader(p: Buffer): Buffer;
}

const RULES: Record<VideoCodec, CodecRules> = {
  H264: {
    type: (n, at = 0) => n[at]! & 0x1f,
    isKey: (t) => t === 5,
    paramSlot: (t) => (t === 7 ? 1 : t === 8 ? 2 : -1),
    aggregate: 24, // STAP-A
    fragment: 28, // FU-A
    headerLen: 1,
    fuNalHeader: (p) => Buffer.from([(p[0]! & 0xe0) | (p[1]! & 0x1f)]),
  },
  H265: {
    type: (n, at = 0) => (n[at]! >> 1) & 0x3f,
    isKey: (t) => t >= 16 && t <= 21,
    paramSlot: (t) => (t >= 32 && t <= 34 ? t - 32 : -1),
    aggregate: 48, // AP
    fragment: 49, // FU
    headerLen: 2,
    fuNalHeader: (p) => Buffer.from([(p[0]! & 0x81) | ((p[2]! & 0x3f) << 1), p[1]!]),
  },
};

export interface KeyframeSamplerOptions {
  codec: VideoCodec;
  /** RTP clock rate of the track (90000 for video). */
  clockRate: number;
  /** Pass the first keyframe, then one keyframe at least this many seconds (stream time) after the last. */
  everySec: number;
  /** Parameter sets from the SDP (sprop-parameter-sets / sprop-vps,sps,pps), NAL units without start codes. */
  parameterSets?: Buffer[];
  /** Receives each sampled keyframe as Annex-B bytes. */
  onKeyframe(annexB: Buffer, rtpTime: number): void;
}

/** RTP payload offset and fields; null if the packet is not RTP version 2 or is truncated. */
export function parseRtp(pkt: Buffer): { seq: number; ts: number; marker: boolean; payload: Buffer } | null {
  if (pkt.length < 12 || pkt[0]! >> 6 !== 2) return null;
  let off = 12 + (pkt[0]! & 0x0f) * 4;
  if (pkt[0]! & 0x10) {
    if (pkt.length < off + 4) return null;
    off += 4 + pkt.readUInt16BE(off + 2) * 4;
  }
  let end = pkt.length;
  if (pkt[0]! & 0x20) end -= pkt[end - 1]!;
  if (end <= off) return null;
  return { seq: pkt.readUInt16BE(2), ts: pkt.readUInt32BE(4), marker: (pkt[1]! & 0x80) !== 0, payload: pkt.subarray(off, end) };
}

export class RtpKeyframeSampler {
  private readonly rules: CodecRules;
  private readonly gapTicks: number;
  private readonly params: (Buffer | null)[] = [null, null, null];
  private lastSeq = -1;
  private auTs = -1;
  /** The current access unit is being assembled (a keyframe is due). */
  private collecting = false;
  /** A packet of the current access unit was lost: it cannot be passed on. */
  private broken = false;
  private nals: Buffer[] = [];
  private fu: Buffer[] | null = null;
  private keptTs: number | null = null;
  /** Counters for status and tests. */
  readonly stats = { packets: 0, lost: 0, passed: 0 };

  constructor(private readonly o: KeyframeSamplerOptions) {
    this.rules = RULES[o.codec];
    this.gapTicks = Math.round(keyframeGapSec(o.everySec) * o.clockRate);
    for (const ps of o.parameterSets ?? []) this.noteParam(ps);
  }

  /** One RTP packet of the video track (may be a view of a reused buffer: what is kept is copied). */
  push(pkt: Buffer): void {
    const r = parseRtp(pkt);
    if (!r) return;
    this.stats.packets++;
    if (this.lastSeq >= 0 && r.seq !== ((this.lastSeq + 1) & 0xffff)) {
      this.stats.lost++;
      this.broken = true;
      this.fu = null;
    }
    this.lastSeq = r.seq;
    if (r.ts !== this.auTs) this.begin(r.ts);
    const p = r.payload;
    if (this.collecting) this.collect(p);
    else this.watchParams(p);
    if (r.marker) this.end();
  }

  private begin(ts: number): void {
    if (this.collecting) this.end();
    this.auTs = ts;
    this.broken = false;
    this.nals = [];
    this.fu = null;
    this.collecting = this.keptTs === null || ((ts - this.keptTs) >>> 0) >= this.gapTicks;
  }

  /** End of the current access unit: pass it on if it is a complete keyframe. */
  private end(): void {
    const collecting = this.collecting;
    this.collecting = false;
    if (!collecting || this.broken || this.nals.length === 0) return;
    const types = this.nals.map((n) => this.rules.type(n));
    if (!types.some((t) => this.rules.isKey(t))) return;
    for (const n of this.nals) this.noteParam(n);
    const parts: Buffer[] = [];
    // Parameter sets the access unit lacks (the camera sends them out of band, or only now and then).
    for (let slot = 0; slot < 3; slot++) {
      const ps = this.params[slot];
      if (ps && !types.some((t) => this.rules.paramSlot(t) === slot)) parts.push(START, ps);
    }
    for (const n of this.nals) parts.push(START, n);
    parts.push(AUD[this.o.codec]);
    this.keptTs = this.auTs;
    this.stats.passed++;
    this.o.onKeyframe(Buffer.concat(parts), this.auTs);
  }

  private collect(p: Buffer): void {
    const R = this.rules;
    const t = R.type(p);
    if (t === R.aggregate) {
      for (const nal of this.aggregated(p)) this.nals.push(Buffer.from(nal));
    } else if (t === R.fragment) {
      const fuHeader = p[R.headerLen]!;
      const data = Buffer.from(p.subarray(R.headerLen + 1));
      if (fuHeader & 0x80) this.fu = [R.fuNalHeader(p), data];
      else if (this.fu) this.fu.push(data);
      else this.broken = true; // middle of a unit whose start we did not see
      if (fuHeader & 0x40 && this.fu) {
        this.nals.push(Buffer.concat(this.fu));
        this.fu = null;
      }
    } else if (p.length > 0) {
      this.nals.push(Buffer.from(p));
    }
  }

  /** Outside sampled access units: only keep parameter sets up to date (a byte or two per packet). */
  private watchParams(p: Buffer): void {
    const R = this.rules;
    const t = R.type(p);
    if (R.paramSlot(t) >= 0) this.noteParam(p);
    else if (t === R.aggregate) for (const nal of this.aggregated(p)) this.noteParam(nal);
  }

  /** The NAL units of an aggregation packet (STAP-A / AP: [16-bit size][NAL] ...), as views of it. */
  private *aggregated(p: Buffer): Generator<Buffer> {
    for (let i = this.rules.headerLen; i + 2 < p.length; ) {
      const n = p.readUInt16BE(i);
      if (n === 0 || i + 2 + n > p.length) return;
      yield p.subarray(i + 2, i + 2 + n);
      i += 2 + n;
    }
  }

  private noteParam(nal: Buffer): void {
    const slot = this.rules.paramSlot(this.rules.type(nal));
    // A copy: the packet is a view of the receiver's reused read buffer.
    if (slot >= 0 && !this.params[slot]?.equals(nal)) this.params[slot] = Buffer.from(nal);
  }
}
