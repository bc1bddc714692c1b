/**
 * Cuts ffmpeg's `-f image2pipe -c:v ppm` output (a stream of binary PPM images: "P6\n<w> <h>\n255\n"
 * followed by w*h*3 bytes of RGB24) into whole frames.
 *
 * Why PPM rather than headerless rawvideo: every frame carries its own size, so Node never has to
 * guess or parse ffmpeg's stderr to learn it (stderr and stdout are separate pipes with no ordering
 * between them), a camera that changes resolution mid-stream cannot silently shift every later
 * frame, and a corrupt stream is detected at the next header instead of producing garbage images.
 * The header costs ~15 bytes per frame; the pixel bytes are exactly rawvideo rgb24.
 *
 * Memory: at most one frame under construction; stdout chunks are copied once into a buffer of the
 * frame's own (never a view of a chunk, which would keep the whole chunk alive while the frame lives).
 */

export class FrameStreamError extends Error {
  override name = 'FrameStreamError';
}

const MAX_HEADER = 64;

export class PpmFrameSplitter {
  private readonly header = Buffer.alloc(MAX_HEADER);
  private headerLen = 0;
  private tokens = 0;
  private frame: Buffer | null = null;
  private filled = 0;
  private need = 0;
  private width = 0;
  private height = 0;
  private failed: FrameStreamError | null = null;

  constructor(
    private readonly onFrame: (data: Buffer, width: number, height: number) => void,
    private readonly maxPixels = 8192 * 8192,
  ) {}

  /** Bytes received towards the current frame (header excluded); 0 between frames. */
  get pending(): number {
    return this.filled;
  }

  /** Feed one stdout chunk. Throws FrameStreamError on data that is not a PPM stream (and on every later call). */
  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.need === 0) {
        off = this.readHeader(chunk, off);
        continue;
      }
      const remaining = this.need - this.filled;
      if (!this.frame) this.frame = Buffer.allocUnsafeSlow(this.need);
      const n = Math.min(remaining, len - off);
      chunk.copy(this.frame, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.need) this.finish(this.frame);
    }
  }

  private finish(data: Buffer): void {
    const { width, height } = this;
    this.frame = null;
    this.filled = 0;
    this.need = 0;
    this.onFrame(data, width, height);
  }

  private fail(msg: string): never {
    this.failed = new FrameStreamError(msg);
    throw this.failed;
  }

  /** Consumes header bytes from chunk[off..]; returns the new offset. Sets `need` when complete. */
  private readHeader(chunk: Buffer, off: number): number {
    while (off < chunk.length) {
      const b = chunk[off++]!;
      if (this.headerLen === MAX_HEADER) this.fail(`frame header longer than ${MAX_HEADER} bytes: not a PPM stream`);
      this.header[this.headerLen++] = b;
      if (this.headerLen === 1 && b !== 0x50 /* P */) this.fail(`expected a PPM header ("P6"), got byte 0x${b.toString(16)}`);
      const ws = b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
      if (ws && this.headerLen > 1) {
        const prev = this.header[this.headerLen - 2]!;
        const prevWs = prev === 0x20 || prev === 0x0a || prev === 0x0d || prev === 0x09;
        if (!prevWs) this.tokens++;
      }
      if (this.tokens === 4) {
        this.parseHeader();
        return off;
      }
    }
    return off;
  }

  private parseHeader(): void {
    const text = this.header.toString('latin1', 0, this.headerLen);
    this.headerLen = 0;
    this.tokens = 0;
    const [magic, w, h, max] = text.trim().split(/\s+/);
    if (magic !== 'P6') this.fail(`expected PPM magic "P6", got ${JSON.stringify(magic)}`);
    if (max !== '255') this.fail(`expected 8-bit PPM (maxval 255), got ${JSON.stringify(max)}`);
    const width = /^\d+$/.test(w ?? '') ? Number(w) : NaN;
    const height = /^\d+$/.test(h ?? '') ? Number(h) : NaN;
    if (!(width > 0 && height > 0) || width * height > this.maxPixels)
      this.fail(`bad PPM frame size ${JSON.stringify(w)}x${JSON.stringify(h)}`);
    this.width = width;
    this.height = height;
    this.need = width * height * 3;
  }
}
