// Live view player. The jsmpeg decoder is not bundled with this project (not in node_modules, and
// nothing is fetched from the internet), so this placeholder proves the stream is flowing: it
// counts the MPEG-TS bytes, the MPEG-1 pictures (start code 00 00 01 00) and reads the picture
// size from the sequence header (00 00 01 B3). Drop jsmpeg.min.js into public/ and replace
// `Placeholder` with `new JSMpeg.Player(wsUrl, { canvas })` to get pictures.

class Placeholder {
  constructor(wsUrl, onStats, onState) {
    this.bytes = 0;
    this.frames = 0;
    this.size = null;
    this.tail = new Uint8Array(0);
    this.ws = new WebSocket(wsUrl);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => onState('liveConnected');
    this.ws.onclose = () => onState('liveClosed');
    this.ws.onmessage = (m) => {
      const chunk = new Uint8Array(m.data);
      this.bytes += chunk.length;
      this.scan(chunk);
      onStats(this);
    };
  }

  scan(chunk) {
    // Start codes may straddle two messages: keep the last 7 bytes of the previous one.
    const buf = new Uint8Array(this.tail.length + chunk.length);
    buf.set(this.tail);
    buf.set(chunk, this.tail.length);
    const skip = this.tail.length;
    for (let i = 0; i + 3 < buf.length; i++) {
      if (buf[i] !== 0 || buf[i + 1] !== 0 || buf[i + 2] !== 1) continue;
      if (i + 3 < skip) continue; // already counted
      const code = buf[i + 3];
      if (code === 0x00) this.frames++;
      else if (code === 0xb3 && i + 6 < buf.length) {
        const w = (buf[i + 4] << 4) | (buf[i + 5] >> 4);
        const h = ((buf[i + 5] & 0x0f) << 8) | buf[i + 6];
        this.size = `${w}×${h}`;
      }
    }
    this.tail = buf.slice(Math.max(0, buf.length - 7));
  }

  close() {
    this.ws.close();
  }
}

export function openLive(overlay, wsUrl, title, { t, h }) {
  const status = h('div', { id: 'live-status' }, t('liveConnecting'));
  const stats = h('div', { id: 'live-stats' }, '');
  let player = null;
  const close = () => {
    player?.close();
    overlay.hidden = true;
    overlay.replaceChildren();
    overlay.onclick = null;
  };
  overlay.onclick = null;
  overlay.replaceChildren(h('div', { class: 'panel' },
    h('div', { class: 'row' }, h('b', {}, `${t('liveView')} · ${title}`), h('button', { class: 'btn secondary', type: 'button', id: 'live-close', onclick: close }, t('close'))),
    h('div', { class: 'livebox' }, status, stats, h('p', { class: 'muted' }, t('livePlaceholder')))));
  overlay.hidden = false;
  player = new Placeholder(
    wsUrl,
    (p) => { stats.textContent = `${p.bytes.toLocaleString()} ${t('bytes')} · ${p.frames} ${t('frames')}${p.size ? ` · ${p.size}` : ''}`; },
    (key) => { status.textContent = t(key); },
  );
}
