/**
 * RtpKeyframeSampler on hand-built RTP packets (RFC 6184 / RFC 7798 packetisation), so that every
 * packet type and the sampling interval are checked byte for byte. The whole chain on a real RTSP
 * server and decoder is in tests/integration/camera-ingest.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseRtp, RtpKeyframeSampler, type VideoCodec } from '../../agent/camera/rtp-keyframes.js';
import { h264Key, idr, rtp, SC } from '../helpers/rtp.js';

function collect(codec: VideoCodec, everySec: number, parameterSets?: Buffer[]) {
  const got: Array<{ bytes: Buffer; ts: number }> = [];
  const s = new RtpKeyframeSampler({ codec, clockRate: 90000, everySec, parameterSets, onKeyframe: (bytes, ts) => got.push({ bytes, ts }) });
  return { s, got };
}


describe('parseRtp', () => {
  it('skips CSRCs, a header extension and padding, and rejects what is not RTP v2', () => {
    const p = parseRtp(rtp(7, 900, true, [0x41, 9, 9], { csrc: 2, ext: [1, 2], pad: 3 }))!;
    expect(p).toMatchObject({ seq: 7, ts: 900, marker: true });
    expect([...p.payload]).toEqual([0x41, 9, 9]);
    expect(parseRtp(Buffer.from([0x40, 0, 0, 1]))).toBeNull();
    const v1 = rtp(1, 1, false, [1]);
    v1[0] = 0x40;
    expect(parseRtp(v1)).toBeNull();
  });
});

describe('RtpKeyframeSampler (H.264)', () => {
  it('passes the first keyframe and then one per interval, reassembled as Annex-B with an AUD after it', () => {
    const { s, got } = collect('H264', 2);
    let seq = 100;
    // 15 fps, a keyframe every 15 frames (1 s) for 6 s; P-frames are single NAL units.
    for (let f = 0; f < 90; f++) {
      const ts = 1_000_000 + f * 6000;
      if (f % 15 === 0) {
        const pkts = h264Key(seq, ts, idr(250, f));
        seq += pkts.length;
        for (const p of pkts) s.push(p);
      } else s.push(rtp(seq++, ts, true, [0x41, f, f]));
    }
    // Keyframes at 0..5 s; kept: 0 s, 2 s, 4 s.
    expect(got.map((g) => (g.ts - 1_000_000) / 90000)).toEqual([0, 2, 4]);
    const want = Buffer.from([...SC, 0x67, 1, 2, 3, ...SC, 0x68, 4, 5, ...SC, ...idr(250, 30), ...SC, 0x09, 0xf0]);
    expect(got[1]!.bytes.equals(want)).toBe(true);
    expect(s.stats).toMatchObject({ packets: 90 + 6 * 3, lost: 0, passed: 3 });
  });

  it('drops a keyframe with a lost packet and takes the next complete one', () => {
    const { s, got } = collect('H264', 5);
    const k1 = h264Key(1, 0, idr(300, 1));
    k1.splice(2, 1); // a middle FU-A fragment lost
    for (const p of k1) s.push(p);
    const k2 = h264Key(5, 90000, idr(300, 2)); // k1 was seq 1-4
    for (const p of k2) s.push(p);
    expect(got).toHaveLength(1);
    expect(got[0]!.ts).toBe(90000);
    expect(s.stats.lost).toBe(1);
  });

  it('puts the SDP parameter sets before a keyframe that has none in band, and follows in-band updates', () => {
    const { s, got } = collect('H264', 1, [Buffer.from([0x67, 9, 9]), Buffer.from([0x68, 8])]);
    for (const p of h264Key(1, 0, idr(10, 5), 100, false)) s.push(p);
    expect([...got[0]!.bytes]).toEqual([...SC, 0x67, 9, 9, ...SC, 0x68, 8, ...SC, ...idr(10, 5), ...SC, 0x09, 0xf0]);
    // New SPS/PPS arrive with a keyframe that is not sampled (too early); the next sampled keyframe has none in band.
    for (const p of h264Key(5, 45000, idr(10, 6))) s.push(p);
    for (const p of h264Key(9, 90000, idr(10, 7), 100, false)) s.push(p);
    expect(got).toHaveLength(2);
    expect([...got[1]!.bytes]).toEqual([...SC, 0x67, 1, 2, 3, ...SC, 0x68, 4, 5, ...SC, ...idr(10, 7), ...SC, 0x09, 0xf0]);
  });

  it('keeps sampling across the 32-bit RTP timestamp wrap', () => {
    const { s, got } = collect('H264', 1);
    let seq = 0;
    for (let k = 0; k < 4; k++) for (const p of h264Key(seq, (0xffff0000 + k * 90000) >>> 0, idr(5, k))) (s.push(p), seq++);
    expect(got).toHaveLength(4);
  });
});

describe('RtpKeyframeSampler (H.265)', () => {
  it('reassembles aggregation and fragmentation units around an IDR and ignores non-IRAP pictures', () => {
    const { s, got } = collect('H265', 1);
    const vps = [0x40, 0x01, 7];
    const sps = [0x42, 0x01, 8];
    const pps = [0x44, 0x01, 9];
    const idrNal = Buffer.from([0x26, 0x01, ...Array(120).fill(3)]); // IDR_W_RADL (19)
    // AP: payload header type 48, then [size][NAL] x 3.
    s.push(rtp(1, 0, false, [0x60, 0x01, 0, 3, ...vps, 0, 3, ...sps, 0, 3, ...pps]));
    // FU: payload header type 49 (layer/tid of the NAL), FU header S/E + type 19.
    const body = idrNal.subarray(2);
    s.push(rtp(2, 0, false, [0x62, 0x01, 0x80 | 19, ...body.subarray(0, 60)]));
    s.push(rtp(3, 0, true, [0x62, 0x01, 0x40 | 19, ...body.subarray(60)]));
    // A trailing picture (TRAIL_R, type 1) a second later is not a keyframe.
    s.push(rtp(4, 90000, true, [0x02, 0x01, 5, 5]));
    expect(got).toHaveLength(1);
    expect([...got[0]!.bytes]).toEqual([...SC, ...vps, ...SC, ...sps, ...SC, ...pps, ...SC, ...idrNal, ...SC, 0x46, 0x01, 0x50]);
  });
});
