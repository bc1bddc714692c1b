// Live view player: jsmpeg (@cycjimmy/jsmpeg-player, MIT) decodes the MPEG-TS / MPEG-1 stream that
// central's WebSocket carries (ffmpeg `-f mpegts -codec:v mpeg1video -bf 0`) and draws it on a canvas
// (WebGL, or canvas 2D where WebGL is missing). The player script is served by central itself at
// /vendor/jsmpeg-player.js (read from node_modules; it defines the global `JSMpeg`) and loaded only
// when a live view is first opened, so the dashboard's first load stays small.
//
// Content-Security-Policy: `script-src 'self'` has no 'wasm-unsafe-eval', so the player's
// WebAssembly decoder is switched off (`disableWebAssembly`) and its JavaScript decoder is used; the
// style sheet the script injects (for its VideoElement, unused here) is allowed by its hash in
// `style-src` (central/http/server.ts). No worker, no blob: URL, no eval.

const PLAYER_SRC = '/vendor/jsmpeg-player.js';
let loading = null;

function loadJsmpeg() {
  if (window.JSMpeg?.Player) return Promise.resolve(window.JSMpeg);
  loading ??= new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = PLAYER_SRC;
    s.onload = () => (window.JSMpeg?.Player ? resolve(window.JSMpeg) : reject(new Error('JSMpeg missing')));
    s.onerror = () => {
      loading = null; // let a later attempt try again
      s.remove();
      reject(new Error(`${PLAYER_SRC} failed to load`));
    };
    document.head.append(s);
  });
  return loading;
}

/** jsmpeg's WebSocket source, also counting bytes and reporting open / close. */
function countingSource(JSMpeg, hooks) {
  return class CountingSource extends JSMpeg.Source.WebSocket {
    onOpen() {
      super.onOpen();
      hooks.open();
    }
    onClose() {
      super.onClose(); // no reconnect (reconnectInterval 0): the token was single-use
      hooks.close();
    }
    onMessage(ev) {
      hooks.bytes(ev.data.byteLength);
      super.onMessage(ev);
    }
  };
}

export function openLive(overlay, wsUrl, title, { t, h }) {
  const status = h('div', { id: 'live-status' }, t('liveConnecting'));
  const stats = h('div', { id: 'live-stats' }, '');
  const canvas = h('canvas', { id: 'live-canvas', width: 640, height: 360 });
  let player = null;
  let closed = false;
  const close = () => {
    closed = true;
    if (player) {
      player.destroy();
      // Give the WebGL context back now rather than at garbage collection (phones allow few).
      canvas.getContext('webgl')?.getExtension('WEBGL_lose_context')?.loseContext();
      player = null;
    }
    overlay.hidden = true;
    overlay.replaceChildren();
    overlay.onclick = null;
  };
  overlay.onclick = null;
  overlay.replaceChildren(h('div', { class: 'panel' },
    h('div', { class: 'row' }, h('b', {}, `${t('liveView')} · ${title}`), h('button', { class: 'btn secondary', type: 'button', id: 'live-close', onclick: close }, t('close'))),
    h('div', { class: 'livebox' }, canvas, status, stats)));
  overlay.hidden = false;

  const counts = { bytes: 0, frames: 0, size: null, decodeMs: 0 };
  let shownAt = 0;
  const showStats = (force) => {
    const now = performance.now();
    if (!force && now - shownAt < 250) return; // a few updates a second are plenty
    shownAt = now;
    stats.dataset.bytes = String(counts.bytes);
    stats.dataset.frames = String(counts.frames);
    stats.textContent = counts.frames
      ? `${counts.bytes.toLocaleString()} ${t('bytes')} · ${counts.frames} ${t('frames')}${counts.size ? ` · ${counts.size}` : ''}`
      : `${counts.bytes.toLocaleString()} ${t('bytes')} · ${t('liveNoPicture')}`;
  };

  loadJsmpeg().then((JSMpeg) => {
    if (closed) return;
    const Source = countingSource(JSMpeg, {
      open: () => { status.textContent = t('liveConnected'); },
      close: () => { status.textContent = t('liveClosed'); showStats(true); },
      bytes: (n) => { counts.bytes += n; showStats(false); },
    });
    player = new JSMpeg.Player(wsUrl, {
      canvas,
      source: Source,
      audio: false,
      disableWebAssembly: true,
      reconnectInterval: 0,
      onVideoDecode: (decoder, elapsedMs) => {
        counts.frames++;
        counts.decodeMs = elapsedMs;
        if (decoder.width) counts.size = `${decoder.width}×${decoder.height}`;
        showStats(counts.frames === 1);
      },
    });
  }).catch((err) => {
    status.textContent = `${t('liveClosed')}: ${err.message}`;
  });
}
