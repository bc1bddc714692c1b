/** Hand-built RTP packets (RFC 3550) carrying H.264 (RFC 6184), for the receiver and sampler tests. */

/** Annex-B start code. */
export const SC = [0, 0, 0, 1];

export function rtp(seq: number, ts: number, marker: boolean, payload: number[] | Buffer, opts: { csrc?: number; ext?: number[]; pad?: number } = {}): Buffer {
  const cc = opts.csrc ?? 0;
  const h = Buffer.alloc(12 + cc * 4);
  h[0] = 0x80 | cc | (opts.ext ? 0x10 : 0) | (opts.pad ? 0x20 : 0);
  h[1] = (marker ? 0x80 : 0) | 96;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  h.writeUInt32BE(0x1234, 8);
  const parts = [h];
  if (opts.ext) {
    const e = Buffer.alloc(4 + opts.ext.length * 4);
    e.writeUInt16BE(0xbede, 0);
    e.writeUInt16BE(opts.ext.length, 2);
    parts.push(e);
  }
  parts.push(Buffer.from(payload));
  if (opts.pad) parts.push(Buffer.from([...Array(opts.pad - 1).fill(0), opts.pad]));
  return Buffer.concat(parts);
}

/** H.264 packets of one access unit: SPS+PPS in a STAP-A, the IDR slice in FU-A fragments of `mtu`. */
export function h264Key(seq: number, ts: number, idr: Buffer, mtu = 100, withParams = true): Buffer[] {
  const out: Buffer[] = [];
  if (withParams) {
    const sps = [0x67, 1, 2, 3];
    const pps = [0x68, 4, 5];
    out.push(rtp(seq++, ts, false, [0x18, 0, sps.length, ...sps, 0, pps.length, ...pps]));
  }
  const body = idr.subarray(1);
  for (let i = 0; i < body.length; i += mtu) {
    const start = i === 0;
    const end = i + mtu >= body.length;
    out.push(rtp(seq++, ts, end, [(idr[0]! & 0xe0) | 28, (start ? 0x80 : 0) | (end ? 0x40 : 0) | (idr[0]! & 0x1f), ...body.subarray(i, i + mtu)]));
  }
  return out;
}

/** An IDR slice NAL unit of n payload bytes. */
export const idr = (n: number, fill: number) => Buffer.from([0x65, ...Array(n).fill(fill)]);
