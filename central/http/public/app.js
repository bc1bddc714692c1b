// Dashboard: plain ES modules, no build step. DOM is built with h() (never innerHTML with data).
import { t, getLang, setLang, setTimeZone, zoneDate, zoneMidnight, kindText, labelText, KINDS, fmtTime, fmtDuration } from './i18n.js';
import { openLive } from './live.js';

const state = { user: null, csrf: '', sites: [], events: [], filters: {}, voice: [], es: null };
const $ = (sel) => document.querySelector(sel);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed under CSP, unlike style="" attributes
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** replaceChildren would print `null` for skipped parts: drop them first. */
function setMain(...parts) {
  $('#main').replaceChildren(...parts.flat(Infinity).filter((p) => p != null && p !== false));
}

function toast(msg) {
  const el = $('#toast');
  el.textContent = msg;
  el.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('show'), 3000);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { 'Accept-Language': getLang() === 'en' ? 'en' : 'zh-CN' };
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (res.status === 401 && path !== '/api/login') {
    if (state.user) toast(t('sessionExpired'));
    state.user = null;
    showLogin();
    throw new ApiError(401, json);
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

// ---------- shell ----------
const NAV = [
  ['alerts', 'navAlerts'], ['overdue', 'navOverdue'], ['voice', 'navVoice'], ['sites', 'navSites'], ['stats', 'navStats'],
];

function renderShell() {
  document.title = t('appTitle');
  $('#brand').textContent = t('appTitle');
  $('#lang').textContent = t('langToggle');
  $('#logout').textContent = t('logout');
  $('#who').textContent = state.user ? `${state.user.name} · ${t('role_' + state.user.role)}` : '';
  const view = currentRoute().view;
  const nav = state.user?.role === 'admin' ? [...NAV, ['admin', 'navAdmin']] : NAV;
  $('#nav').replaceChildren(...nav.map(([id, key]) => h('a', { href: `#/${id}`, class: view === id ? 'active' : '', id: `nav-${id}` }, t(key))));
}

function currentRoute() {
  const [view = 'alerts', arg] = location.hash.replace(/^#\/?/, '').split('/');
  return { view: view || 'alerts', arg: arg ? decodeURIComponent(arg) : undefined };
}

function showLogin() {
  closeStream();
  $('#top').hidden = true;
  const err = h('div', { class: 'error', id: 'login-error' });
  const user = h('input', { name: 'username', id: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const pass = h('input', { name: 'password', id: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 200 });
  const form = h('form', { class: 'card login', id: 'login-form', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const r = await api('POST', '/api/login', { username: user.value.trim(), password: pass.value });
      state.user = r.user;
      state.csrf = r.csrfToken;
      setTimeZone(r.user.timezone);
      if (r.user.lang && !localStorage.getItem('bk_lang')) setLang(r.user.lang);
      start();
    } catch (ex) {
      err.textContent = ex.body?.message ?? String(ex.message);
    }
  } },
  h('h1', {}, t('appTitle')),
  h('label', { class: 'field' }, t('username'), user),
  h('label', { class: 'field' }, t('password'), pass),
  err,
  h('button', { class: 'btn', type: 'submit', id: 'login-submit' }, t('login')),
  h('p', { class: 'row' }, h('button', { type: 'button', class: 'btn secondary', onclick: () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); showLogin(); } }, t('langToggle'))));
  setMain(form);
  user.focus();
}

async function start() {
  $('#top').hidden = false;
  try {
    state.sites = await api('GET', '/api/sites');
  } catch { return; }
  openStream();
  renderShell();
  route();
}

window.addEventListener('hashchange', () => { if (state.user) { renderShell(); route(); } });

function route() {
  const { view, arg } = currentRoute();
  const views = { alerts: viewAlerts, event: () => viewEvent(arg), overdue: viewOverdue, voice: viewVoice, sites: viewSites, stats: viewStats, admin: () => viewAdmin(arg) };
  (views[view] ?? viewAlerts)().catch((e) => {
    if (e instanceof ApiError && e.status === 401) return;
    setMain(h('p', { class: 'error' }, e.body?.message ?? String(e.message)));
  });
}

// ---------- server push ----------
function openStream() {
  closeStream();
  const es = new EventSource('/api/stream');
  state.es = es;
  const dot = $('#live-dot');
  let missed = false;
  es.onopen = () => {
    dot.classList.add('on');
    dot.title = t('live');
    // what was pushed while the stream was down is gone: read the lists again
    if (missed) { missed = false; reloadLists(); }
  };
  es.onerror = () => {
    missed = true;
    dot.classList.remove('on');
    dot.title = t('disconnected');
    // A closed stream may mean the session expired: ask once, api() shows the login page on 401.
    if (es.readyState === EventSource.CLOSED) api('GET', '/api/me').then(openStream).catch(() => {});
  };
  const on = (name, fn) => es.addEventListener(name, (m) => { try { fn(JSON.parse(m.data)); } catch { /* ignore */ } });
  on('alert', (ev) => { upsertEvent(ev, true); toast(`${t('newAlert')}: ${ev.siteName} · ${kindText(ev.kind)}`); });
  on('event', (ev) => upsertEvent(ev, false));
  on('voice', (v) => upsertVoice(v));
  on('site', (s) => updateSite(s));
  on('camera', (c) => updateCamera(c));
  on('resync', () => reloadLists());
}

/** Re-reads the views that are lists; views with a form the user may be typing in are left alone. */
function reloadLists() {
  if (['alerts', 'overdue', 'sites'].includes(currentRoute().view)) route();
}

function closeStream() {
  state.es?.close();
  state.es = null;
}

function matchesFilters(ev) {
  const f = state.filters;
  return (!f.siteId || ev.siteId === f.siteId) && (!f.kind || ev.kind === f.kind) && (!f.status || ev.status === f.status)
    && (!f.from || ev.raisedAt >= f.from) && (!f.to || ev.raisedAt < f.to);
}

function upsertEvent(ev, fresh) {
  const i = state.events.findIndex((e) => e.id === ev.id);
  if (i >= 0) state.events[i] = ev;
  else if (matchesFilters(ev)) state.events.unshift(ev);
  const { view, arg } = currentRoute();
  if (view === 'alerts') {
    const old = document.querySelector(`.ev[data-id="${CSS.escape(ev.id)}"]`);
    const card = eventCard(ev, fresh);
    if (old) old.replaceWith(card);
    else if (matchesFilters(ev)) { $('#feed')?.prepend(card); $('#feed-empty')?.remove(); }
  } else if (view === 'event' && arg === ev.id) {
    viewEvent(ev.id).catch(() => {});
  }
}

function upsertVoice(v) {
  const rec = v.id ? v : null;
  if (!rec) return;
  const i = state.voice.findIndex((x) => x.id === rec.id);
  if (i >= 0) state.voice[i] = { ...state.voice[i], ...rec };
  else state.voice.unshift(rec);
  if (currentRoute().view === 'voice') renderVoiceList();
}

function updateSite(s) {
  const site = state.sites.find((x) => x.id === (s.id ?? s.siteId));
  if (!site) return;
  if ('online' in s) site.online = s.online;
  if (s.lastSeenAt !== undefined) site.lastSeenAt = s.lastSeenAt;
  else if (s.ts) site.lastSeenAt = s.ts;
  if (Array.isArray(s.cameras)) site.cameras = s.cameras;
  if (currentRoute().view === 'sites') renderSites();
}

function updateCamera(c) {
  const site = state.sites.find((x) => x.id === c.siteId);
  if (!site) return;
  const id = c.cameraId ?? c.id;
  const cam = site.cameras.find((x) => x.id === id);
  const next = { id, name: c.name ?? cam?.name ?? id, state: c.state, lastFrameAt: c.lastFrameAt ?? null, fps: c.fps ?? 0, error: c.error ?? null };
  if (cam) Object.assign(cam, next); else site.cameras.push(next);
  if (currentRoute().view === 'sites') renderSites();
}

// ---------- alerts ----------
function sevBadge(sev) { return h('span', { class: `badge sev-${sev}` }, t(`severity_${sev}`)); }
function statusBadge(st) { return h('span', { class: `badge st-${st} status` }, t(`status_${st}`)); }

function thumb(ev, cls = 'thumb') {
  if (!ev.snapshotUrl || ev.snapshotReceived === false) return h('div', { class: `${cls} missing` }, '…');
  return h('img', { class: cls, src: ev.snapshotUrl, alt: kindText(ev.kind), loading: 'lazy', onclick: (e) => { e.stopPropagation(); showImage(ev.snapshotUrl); } });
}

function eventCard(ev, fresh = false) {
  return h('article', { class: `ev sev-${ev.severity}${fresh ? ' fresh' : ''}`, dataset: { id: ev.id }, onclick: () => { location.hash = `#/event/${encodeURIComponent(ev.id)}`; } },
    thumb(ev),
    h('div', { class: 'body' },
      h('div', { class: 'title' }, sevBadge(ev.severity), h('span', { class: 'kind' }, kindText(ev.kind)), statusBadge(ev.status), ev.overdue ? h('span', { class: 'badge overdue' }, t('overdue')) : null,
        ev.experimental ? h('span', { class: 'badge' }, t('experimental')) : null),
      h('div', {}, `${ev.siteName} · ${ev.cameraName}`),
      h('div', { class: 'muted' }, fmtTime(ev.raisedAt))));
}

/** The alert's video clip: a player once complete, progress while its chunks arrive. */
function clipPanel(clip) {
  if (!clip) return null;
  if (clip.state === 'failed') return h('p', { class: 'muted', id: 'clip-state' }, t('clipFailed'));
  if (clip.state === 'expired') return h('p', { class: 'muted', id: 'clip-state' }, t('clipExpired'));
  if (clip.state !== 'complete') return h('p', { class: 'muted', id: 'clip-state' }, t('clipArriving').replace('{n}', clip.chunksReceived).replace('{m}', clip.chunks));
  return h('div', { class: 'clip' },
    h('h2', {}, t('clip'), ' ', h('span', { class: 'muted' }, `${(clip.durationMs / 1000).toFixed(1)} s`)),
    h('video', { id: 'detail-clip', class: 'big', src: clip.url, controls: true, preload: 'metadata', playsinline: true, muted: true }),
    h('p', { class: 'row' }, clip.codec.startsWith('hvc') || clip.codec.startsWith('hev') ? h('span', { class: 'muted' }, t('clipHevc')) : null,
      h('a', { href: clip.url, download: '' }, t('clipDownload'))));
}

function showImage(src) {
  const ov = $('#overlay');
  ov.replaceChildren(h('img', { src, alt: '', id: 'overlay-img' }));
  ov.hidden = false;
  ov.onclick = () => { ov.hidden = true; ov.replaceChildren(); };
}

function siteOptions(selected, withAll = true) {
  return [
    withAll ? h('option', { value: '' }, t('all')) : null,
    ...state.sites.map((s) => h('option', { value: s.id, selected: s.id === selected }, s.name)),
  ];
}

const dayStart = (s) => (s ? zoneMidnight(s) : undefined); // the sites' midnight, not the browser's
const dateInput = (ms) => (ms ? zoneDate(ms) : '');

async function loadEvents(append = false) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, String(v));
  q.set('limit', '40');
  if (append && state.events.length) q.set('before', String(state.events[state.events.length - 1].raisedAt));
  const r = await api('GET', `/api/events?${q}`);
  state.events = append ? state.events.concat(r.events) : r.events;
  return r.events.length;
}

async function viewAlerts() {
  const f = state.filters;
  const site = h('select', { name: 'siteId', id: 'f-site' }, siteOptions(f.siteId));
  const kind = h('select', { name: 'kind', id: 'f-kind' }, h('option', { value: '' }, t('all')), KINDS.map((k) => h('option', { value: k, selected: k === f.kind }, kindText(k))));
  const status = h('select', { name: 'status', id: 'f-status' }, h('option', { value: '' }, t('all')),
    ['open', 'acknowledged', 'rectified', 'closed', 'reopened'].map((s) => h('option', { value: s, selected: s === f.status }, t(`status_${s}`))));
  const from = h('input', { type: 'date', name: 'from', value: dateInput(f.from) });
  const to = h('input', { type: 'date', name: 'to', value: dateInput(f.to ? f.to - 86400000 : undefined) });
  const apply = () => {
    state.filters = { siteId: site.value, kind: kind.value, status: status.value, from: dayStart(from.value), to: to.value ? dayStart(to.value) + 86400000 : undefined };
    viewAlerts().catch(() => {});
  };
  const filters = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
    h('label', {}, t('site'), site), h('label', {}, t('kind'), kind), h('label', {}, t('status'), status),
    h('label', {}, t('from'), from), h('label', {}, t('to'), to),
    h('button', { class: 'btn', type: 'submit' }, t('apply')),
    h('button', { class: 'btn secondary', type: 'button', onclick: () => { state.filters = {}; viewAlerts().catch(() => {}); } }, t('reset')),
    // the list as filtered (applied filters), every matching alert, as CSV
    ['csv', 'xlsx'].map((fmt) => h('a', { class: 'btn secondary', id: `export-list-${fmt}`, download: '',
      href: `/api/events.${fmt}?${new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v).map(([k, v]) => [k, String(v)]))}` }, t(fmt === 'csv' ? 'exportEventsCsv' : 'exportEventsXlsx'))));
  const n = await loadEvents();
  const feed = h('div', { class: 'feed', id: 'feed' }, state.events.map((e) => eventCard(e)));
  const more = h('button', { class: 'btn secondary', type: 'button', hidden: n < 40, onclick: async () => {
    const got = await loadEvents(true);
    feed.replaceChildren(...state.events.map((e) => eventCard(e)));
    more.hidden = got < 40;
  } }, t('loadMore'));
  setMain(h('h1', {}, t('navAlerts')), filters, feed,
    state.events.length ? null : h('p', { class: 'muted', id: 'feed-empty' }, t('noEvents')), h('p', {}, more));
}

// ---------- event detail ----------
function canAck(u, ev) { return ['canteen_manager', 'vice_principal', 'admin'].includes(u.role) && ['open', 'reopened'].includes(ev.status); }
function canRectify(u, ev) { return ['canteen_manager', 'vice_principal', 'admin'].includes(u.role) && ['open', 'acknowledged', 'reopened'].includes(ev.status); }
function canReview(u, ev) { return ['inspector', 'admin'].includes(u.role) && ['rectified', 'closed', 'acknowledged', 'open', 'reopened'].includes(ev.status); }

function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(',')[1] ?? '');
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

async function viewEvent(id) {
  const ev = await api('GET', `/api/events/${encodeURIComponent(id)}`);
  const u = state.user;
  const err = h('div', { class: 'error', id: 'action-error' });
  const act = (fn) => async (e) => {
    e.preventDefault();
    err.textContent = '';
    const btns = e.currentTarget.querySelectorAll?.('button') ?? [];
    btns.forEach((b) => { b.disabled = true; });
    try { await fn(e.currentTarget); toast(t('done')); await viewEvent(id); } catch (ex) { err.textContent = ex.body?.message ?? String(ex.message); btns.forEach((b) => { b.disabled = false; }); }
  };
  const actions = h('div', { class: 'actions' });
  if (canAck(u, ev)) {
    actions.append(h('form', { id: 'ack-form', onsubmit: act(async (form) => api('POST', `/api/events/${encodeURIComponent(id)}/ack`, { note: form.note.value || undefined })) },
      h('input', { name: 'note', placeholder: t('note'), maxlength: 500 }),
      h('button', { class: 'btn', type: 'submit', id: 'ack-btn' }, t('acknowledge'))));
  }
  if (canRectify(u, ev)) {
    actions.append(h('form', { id: 'rectify-form', onsubmit: act(async (form) => {
      const file = form.photo.files[0];
      const body = { note: form.note.value };
      if (file) { body.photoBase64 = await fileToBase64(file); body.photoMime = file.type === 'image/png' ? 'image/png' : 'image/jpeg'; }
      return api('POST', `/api/events/${encodeURIComponent(id)}/rectify`, body);
    }) },
    h('textarea', { name: 'note', placeholder: t('rectifyNote'), required: true, maxlength: 2000 }),
    h('label', { class: 'field' }, t('photo'), h('input', { type: 'file', name: 'photo', accept: 'image/jpeg,image/png', capture: 'environment' })),
    h('button', { class: 'btn ok', type: 'submit', id: 'rectify-btn' }, t('rectify'))));
  }
  if (canReview(u, ev)) {
    let decision = 'close';
    actions.append(h('form', { id: 'review-form', onsubmit: act(async (form) => api('POST', `/api/events/${encodeURIComponent(id)}/review`, { decision, note: form.note.value || undefined })) },
      h('input', { name: 'note', placeholder: t('note'), maxlength: 500 }),
      h('div', { class: 'row' },
        ev.status !== 'closed' ? h('button', { class: 'btn ok', type: 'submit', id: 'review-close', onclick: () => { decision = 'close'; } }, t('reviewClose')) : null,
        ev.status !== 'open' && ev.status !== 'reopened' ? h('button', { class: 'btn danger', type: 'submit', id: 'review-reopen', onclick: () => { decision = 'reopen'; } }, t('reviewReopen')) : null)));
  }
  const kv = (k, v) => [h('dt', {}, t(k)), h('dd', {}, v)];
  const table = (cols, rows) => h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, t(c))))), h('tbody', {}, rows)));
  setMain(
    h('p', {}, h('a', { href: '#/alerts' }, `← ${t('back')}`)),
    h('h1', {}, kindText(ev.kind), ' ', sevBadge(ev.severity), ' ', statusBadge(ev.status), ev.overdue ? [' ', h('span', { class: 'badge overdue' }, t('overdue'))] : null),
    h('div', { class: 'detail' },
      h('div', {},
        ev.snapshotReceived === false ? h('div', { class: 'card muted' }, '…') : h('img', { class: 'big', id: 'detail-img', src: ev.snapshotUrl, alt: kindText(ev.kind), onclick: () => showImage(ev.snapshotUrl) }),
        h('p', { class: 'row' }, h('a', { href: ev.snapshotUrl, target: '_blank', rel: 'noopener' }, t('annotatedSnapshot')), h('a', { href: ev.cleanSnapshotUrl, target: '_blank', rel: 'noopener' }, t('cleanSnapshot'))),
        clipPanel(ev.clip)),
      h('div', { class: 'card' },
        h('dl', { class: 'kv' },
          kv('site', ev.siteName), kv('camera', ev.cameraName), kv('label', `${labelText(ev.label)} (${Math.round(ev.score * 100)}%)`),
          ev.zone ? kv('zone', ev.zone) : null, kv('raisedAt', fmtTime(ev.raisedAt)), kv('receivedAt', fmtTime(ev.receivedAt)),
          kv('deadline', fmtTime(ev.deadlineAt)), ev.ackBy ? kv('ackBy', `${ev.ackByName ?? ev.ackBy} · ${fmtTime(ev.ackAt)}`) : null),
        actions, err)),
    h('h2', {}, t('history')),
    table(['at', 'action', 'by', 'note'], (ev.history ?? []).map((x) => h('tr', {}, h('td', {}, fmtTime(x.at)), h('td', {}, t(`action_${x.action}`)), h('td', { class: 'by' }, actorName(x)), h('td', {}, x.note ?? '')))),
    ev.rectifications?.length ? [h('h2', {}, t('rectifications')),
      table(['at', 'by', 'note', 'photo'], ev.rectifications.map((r) => h('tr', {}, h('td', {}, fmtTime(r.at)), h('td', {}, r.byName ?? r.by), h('td', {}, r.note),
        h('td', {}, r.photoUrl ? h('img', { src: r.photoUrl, alt: '', class: 'rect-photo', width: 120, onclick: () => showImage(r.photoUrl) }) : '')))),
    ] : null,
    h('h2', {}, t('deliveries')),
    table(['recipient', 'channel', 'status', 'attempts', 'level', 'at'], (ev.deliveries ?? []).map((d) => h('tr', {},
      h('td', {}, `${d.recipientName} (${t('role_' + d.role)})`), h('td', {}, t(`channel_${d.channel}`)), h('td', {}, t(`delivery_${d.status}`), d.lastError ? h('div', { class: 'muted' }, d.lastError) : null),
      h('td', {}, d.attempts), h('td', {}, d.level), h('td', {}, fmtTime(d.deliveredAt))))));
}

// Who did a history step: a user's name, or the system actor ('agent', 'central') in words.
function actorName(x) {
  if (x.byName) return x.byName;
  const key = `actor_${x.by}`;
  const text = t(key);
  return text === key ? x.by : text;
}

// ---------- overdue ----------
async function viewOverdue() {
  const r = await api('GET', '/api/overdue');
  setMain(h('h1', {}, t('overdueTitle')),
    r.events.length ? h('div', { class: 'feed', id: 'feed-overdue' }, r.events.map((e) => eventCard(e))) : h('p', { class: 'muted' }, t('noOverdue')));
}

// ---------- voice ----------
function renderVoiceList() {
  const box = $('#voice-list');
  if (!box) return;
  const siteName = (id) => state.sites.find((s) => s.id === id)?.name ?? id;
  box.replaceChildren(h('div', { class: 'scroll' }, h('table', { id: 'voice-table' },
    h('thead', {}, h('tr', {}, ['site', 'camera', 'voiceType', 'text', 'issuedBy', 'issuedAt', 'status', 'stateAt'].map((c) => h('th', {}, t(c))))),
    h('tbody', {}, state.voice.map((v) => h('tr', { dataset: { id: v.id } },
      h('td', {}, siteName(v.siteId)), h('td', {}, v.cameraId ?? t('allSpeakers')), h('td', {}, t(`voice_${v.type}`)), h('td', {}, v.text ?? ''),
      h('td', { class: 'by' }, v.issuedByName ?? v.issuedBy), h('td', {}, fmtTime(v.issuedAt)),
      h('td', {}, h('span', { class: `badge vs-${v.state} voice-state` }, t(`voice_state_${v.state}`)), v.error ? h('div', { class: 'muted' }, v.error) : null),
      h('td', {}, fmtTime(v.stateAt))))))));
}

async function viewVoice() {
  const [presets, list] = await Promise.all([api('GET', '/api/voice/presets'), api('GET', '/api/voice')]);
  state.voice = list;
  const err = h('div', { class: 'error', id: 'voice-error' });
  const site = h('select', { name: 'siteId', id: 'v-site', required: true }, siteOptions(state.sites[0]?.id, false));
  const camera = h('select', { name: 'cameraId', id: 'v-camera' });
  const fillCameras = () => {
    const s = state.sites.find((x) => x.id === site.value);
    camera.replaceChildren(h('option', { value: '' }, t('allSpeakers')), ...(s?.cameras ?? []).map((c) => h('option', { value: c.id }, c.name)));
  };
  site.addEventListener('change', fillCameras);
  fillCameras();
  const type = h('select', { name: 'type', id: 'v-type' }, h('option', { value: 'preset' }, t('voice_preset')), h('option', { value: 'text' }, t('voice_text')));
  const preset = h('select', { name: 'presetId', id: 'v-preset' }, presets.map((p) => h('option', { value: p.id }, p.text)));
  const text = h('textarea', { name: 'text', id: 'v-text', maxlength: 500, hidden: true });
  const presetLabel = h('label', { class: 'field' }, t('preset'), preset);
  const textLabel = h('label', { class: 'field', hidden: true }, t('text'), text);
  type.addEventListener('change', () => { presetLabel.hidden = type.value !== 'preset'; textLabel.hidden = type.value !== 'text'; text.hidden = type.value !== 'text'; });
  const send = async (body) => {
    err.textContent = '';
    try {
      const r = await api('POST', '/api/voice', { siteId: site.value, cameraId: camera.value || undefined, ...body });
      toast(t('voice_state_sent'));
      upsertVoice({ id: r.id, siteId: site.value, cameraId: camera.value || null, type: body.type, text: body.text ?? presets.find((p) => p.id === body.presetId)?.text ?? null,
        issuedBy: state.user.id, issuedByName: state.user.name, issuedAt: Date.now(), state: r.state, stateAt: Date.now(), error: null, ...r });
    } catch (ex) { err.textContent = ex.body?.message ?? String(ex.message); }
  };
  const form = h('form', { class: 'card', id: 'voice-form', onsubmit: (e) => {
    e.preventDefault();
    send(type.value === 'text' ? { type: 'text', text: text.value } : { type: 'preset', presetId: preset.value });
  } },
  h('div', { class: 'row' }, h('label', { class: 'field' }, t('site'), site), h('label', { class: 'field' }, t('camera'), camera), h('label', { class: 'field' }, t('voiceType'), type)),
  presetLabel, textLabel,
  h('div', { class: 'row' }, h('button', { class: 'btn', type: 'submit', id: 'voice-send' }, t('send')), pushToTalk(send)),
  err);
  setMain(h('h1', {}, t('voiceTitle')), form, h('h2', {}, t('sentCommands')), h('div', { id: 'voice-list' }));
  renderVoiceList();
}

/** Hold to record (MediaRecorder), release to send as base64 webm/ogg. */
function pushToTalk(send) {
  const btn = h('button', { class: 'ptt', type: 'button', id: 'ptt' }, t('holdToTalk'));
  let rec = null;
  let chunks = [];
  let startedAt = 0;
  const begin = async (e) => {
    e.preventDefault();
    if (rec) return;
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') { toast(t('micUnavailable')); return; }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const mime = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm'].find((m) => MediaRecorder.isTypeSupported(m)) ?? '';
      rec = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
      chunks = [];
      rec.ondataavailable = (ev) => { if (ev.data.size) chunks.push(ev.data); };
      rec.onstop = async () => {
        stream.getTracks().forEach((tr) => tr.stop());
        const type = (rec.mimeType || 'audio/webm').split(';')[0];
        rec = null;
        btn.classList.remove('rec');
        btn.textContent = t('holdToTalk');
        if (Date.now() - startedAt < 500 || !chunks.length) { toast(t('tooShort')); return; }
        const blob = new Blob(chunks, { type });
        const b64 = await fileToBase64(blob);
        await send({ type: 'audio', audioBase64: b64, mime: type === 'audio/ogg' ? 'audio/ogg' : 'audio/webm' });
      };
      startedAt = Date.now();
      rec.start(250);
      btn.classList.add('rec');
      btn.textContent = t('recording');
    } catch { toast(t('micUnavailable')); rec = null; }
  };
  const end = () => { if (rec && rec.state === 'recording') rec.stop(); };
  btn.addEventListener('pointerdown', begin);
  btn.addEventListener('pointerup', end);
  btn.addEventListener('pointerleave', end);
  btn.addEventListener('pointercancel', end);
  btn.addEventListener('contextmenu', (e) => e.preventDefault());
  return btn;
}

// ---------- sites ----------
function renderSites() {
  const box = $('#sites');
  if (!box) return;
  box.replaceChildren(...state.sites.map((s) => h('section', { class: 'card site', dataset: { id: s.id } },
    h('div', { class: 'row' }, h('b', {}, s.name), h('span', { class: `badge ${s.online ? 'on' : 'off'} site-state` }, t(s.online ? 'online' : 'offline'))),
    h('div', { class: 'muted' }, `${s.schoolName} · ${s.districtName}`),
    h('div', { class: 'muted' }, `${t('lastSeen')}: ${fmtTime(s.lastSeenAt)}`),
    ...s.cameras.map((c) => h('div', { class: 'cam', dataset: { id: c.id } },
      h('div', {}, h('div', {}, c.name), h('div', { class: 'muted' }, `${c.fps ? `${c.fps.toFixed(1)} ${t('fps')} · ` : ''}${fmtTime(c.lastFrameAt)}`), c.error ? h('div', { class: 'error' }, c.error) : null),
      h('div', { class: 'row' },
        h('span', { class: `badge ${c.state === 'online' ? 'on' : 'off'}` }, t(['online', 'offline', 'connecting'].includes(c.state) ? c.state : 'offline')),
        h('button', { class: 'btn secondary', type: 'button', onclick: () => startLive(s, c) }, t('liveView'))))))));
}

async function startLive(site, cam) {
  try {
    const r = await api('POST', `/api/live/${encodeURIComponent(site.id)}/${encodeURIComponent(cam.id)}`);
    openLive($('#overlay'), r.wsUrl, `${site.name} · ${cam.name}`, { t, h });
  } catch (ex) { toast(ex.body?.message ?? String(ex.message)); }
}

async function viewSites() {
  state.sites = await api('GET', '/api/sites');
  setMain(h('h1', {}, t('sitesTitle')), h('div', { class: 'sites', id: 'sites' }));
  renderSites();
}

// ---------- organisation (admin) ----------
// One form per kind, built from this table: `ref` fields pick from another kind's records.
// Edits start from the stored record, so fields without an input (webhooks, siteIds…) survive a PUT.
const ORG_FORMS = {
  cities: [{ key: 'id' }, { key: 'name' }],
  districts: [{ key: 'id' }, { key: 'name' }, { key: 'cityId', ref: 'cities', optional: true }],
  townships: [{ key: 'id' }, { key: 'name' }, { key: 'districtId', ref: 'districts' }],
  schools: [{ key: 'id' }, { key: 'name' }, { key: 'districtId', ref: 'districts' }, { key: 'townshipId', ref: 'townships', optional: true }],
  users: [{ key: 'id' }, { key: 'username' }, { key: 'name' }, { key: 'role', options: ['canteen_manager', 'vice_principal', 'inspector', 'admin'], text: (r) => t(`role_${r}`) },
    // an inspector's office: exactly one of these (the server says which is wrong)
    { key: 'townshipId', ref: 'townships', optional: true }, { key: 'districtId', ref: 'districts', optional: true }, { key: 'cityId', ref: 'cities', optional: true },
    { key: 'schoolId', ref: 'schools', optional: true }, { key: 'password', secret: true }],
};

async function viewAdmin(kindArg) {
  const kind = ORG_FORMS[kindArg] ? kindArg : 'cities';
  const refs = [...new Set(ORG_FORMS[kind].map((f) => f.ref).filter(Boolean))];
  const [rows, ...refRows] = await Promise.all([kind, ...refs].map((k) => api('GET', `/api/org/${k}`)));
  const refOf = Object.fromEntries(refs.map((k, i) => [k, refRows[i]]));
  const err = h('div', { class: 'error', id: 'org-error' });
  const formBox = h('div', { id: 'org-form' });
  const edit = (rec) => {
    const inputs = ORG_FORMS[kind].map((f) => {
      const value = rec?.[f.key] ?? '';
      const el = f.ref || f.options
        ? h('select', { name: f.key }, f.optional ? h('option', { value: '' }, t('none')) : null,
          (f.options ?? refOf[f.ref].map((r) => r.id)).map((v) => h('option', { value: v, selected: v === value }, f.text ? f.text(v) : `${refOf[f.ref].find((r) => r.id === v).name} (${v})`)))
        : h('input', { name: f.key, value: f.secret ? '' : value, type: f.secret ? 'password' : 'text', autocomplete: f.secret ? 'new-password' : 'off', disabled: f.key === 'id' && !!rec, required: !f.secret });
      return [f, el];
    });
    const save = async (e) => {
      e.preventDefault();
      err.textContent = '';
      const body = { ...rec };
      for (const [f, el] of inputs) {
        if (f.secret) { if (el.value) body[f.key] = el.value; }
        else body[f.key] = el.value === '' && f.optional ? null : el.value.trim();
      }
      try {
        await api(rec ? 'PUT' : 'POST', rec ? `/api/org/${kind}/${encodeURIComponent(rec.id)}` : `/api/org/${kind}`, body);
        toast(t('saved'));
        await viewAdmin(kind);
      } catch (ex) { err.textContent = ex.body?.message ?? String(ex.message); }
    };
    formBox.replaceChildren(h('form', { class: 'card', onsubmit: save },
      inputs.map(([f, el]) => h('label', { class: 'field' }, t(`f_${f.key}`), el)),
      h('button', { class: 'btn', type: 'submit', id: 'org-save' }, t('save'))));
  };
  const remove = async (rec) => {
    if (!confirm(t('confirmRemove'))) return;
    err.textContent = '';
    try {
      await api('DELETE', `/api/org/${kind}/${encodeURIComponent(rec.id)}`);
      await viewAdmin(kind);
    } catch (ex) { err.textContent = ex.body?.message ?? String(ex.message); }
  };
  const cols = ORG_FORMS[kind].filter((f) => !f.secret);
  setMain(h('h1', {}, t('navAdmin')),
    h('nav', { class: 'tabs', id: 'org-kinds' }, Object.keys(ORG_FORMS).map((k) => h('a', { href: `#/admin/${k}`, class: k === kind ? 'active' : '', dataset: { kind: k } }, t(`org_${k}`)))),
    err,
    h('div', { class: 'scroll' }, h('table', { id: 'org-table' },
      h('thead', {}, h('tr', {}, cols.map((f) => h('th', {}, t(`f_${f.key}`))), h('th', {}))),
      h('tbody', {}, rows.map((r) => h('tr', { dataset: { id: r.id } }, cols.map((f) => h('td', {}, f.text && r[f.key] ? f.text(r[f.key]) : (r[f.key] ?? ''))),
        h('td', {}, h('button', { class: 'btn secondary', type: 'button', onclick: () => edit(r) }, t('edit')), ' ',
          h('button', { class: 'btn secondary', type: 'button', onclick: () => remove(r) }, t('remove')))))))),
    h('p', {}, h('button', { class: 'btn', type: 'button', id: 'org-add', onclick: () => edit(null) }, t('add'))),
    formBox);
}

// ---------- statistics ----------
async function viewStats() {
  const now = Date.now();
  const fromIn = h('input', { type: 'date', name: 'from', value: dateInput(state.statsFrom ?? now - 6 * 86400000) });
  const toIn = h('input', { type: 'date', name: 'to', value: dateInput(state.statsTo ?? now) });
  const q = new URLSearchParams({ from: String(dayStart(fromIn.value)), to: String(dayStart(toIn.value) + 86400000) });
  const [r, { events: overdue }] = await Promise.all([api('GET', `/api/stats?${q}`), api('GET', '/api/overdue')]);
  const siteName = (id) => state.sites.find((s) => s.id === id)?.name ?? id;
  const byKind = new Map();
  for (const row of r.perDay) byKind.set(row.kind, (byKind.get(row.kind) ?? 0) + row.count);
  const max = Math.max(1, ...byKind.values());
  const total = [...byKind.values()].reduce((a, b) => a + b, 0);
  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); state.statsFrom = dayStart(fromIn.value); state.statsTo = dayStart(toIn.value); viewStats().catch(() => {}); } },
    h('label', {}, t('from'), fromIn), h('label', {}, t('to'), toIn), h('button', { class: 'btn', type: 'submit' }, t('apply')));
  setMain(h('h1', {}, t('statsTitle')), form,
    h('div', { class: 'kpis' },
      h('div', { class: 'kpi' }, t('total'), h('b', { id: 'stat-total' }, total)),
      h('div', { class: 'kpi' }, `${t('timeToAck')} · ${t('median')}`, h('b', { id: 'stat-median' }, fmtDuration(r.timeToAck.medianSec))),
      h('div', { class: 'kpi' }, `${t('timeToAck')} · ${t('p90')}`, h('b', { id: 'stat-p90' }, fmtDuration(r.timeToAck.p90Sec))),
      h('div', { class: 'kpi' }, t('acked'), h('b', {}, r.timeToAck.count))),
    h('h2', {}, t('perKindChart')),
    h('div', { class: 'bars card' }, byKind.size ? KINDS.filter((k) => byKind.has(k)).map((k) => h('div', { class: 'bar' }, h('span', {}, kindText(k)),
      h('div', {}, h('div', { class: `fill k-${k}`, style: { width: `${(100 * byKind.get(k)) / max}%` } })), h('span', {}, byKind.get(k)))) : h('p', { class: 'muted' }, t('noData'))),
    h('h2', {}, t('trendChart')), trendChart(r.perDay, fromIn.value, toIn.value),
    h('h2', {}, t('ranking')), ranking(r.perDay, siteName, overdue),
    r.byOffice?.length > 1 ? [h('h2', {}, t('byOffice')), h('div', { class: 'scroll' }, h('table', { id: 'by-office' },
      h('thead', {}, h('tr', {}, ['officeLevel', 'office', 'sites', 'count', 'overdue'].map((c) => h('th', {}, t(c))))),
      h('tbody', {}, r.byOffice.map((o) => h('tr', { class: `office-${o.level}` }, h('td', {}, t(`role_${o.level}`)), h('td', {}, o.name), h('td', {}, o.sites), h('td', {}, o.events), h('td', {}, o.overdue))))))] : null,
    h('h2', {}, `${t('day')} × ${t('site')} × ${t('kind')}`),
    h('div', { class: 'exports' },
      h('button', { class: 'btn', id: 'export-stats', type: 'button', onclick: () => download(`stats-${fromIn.value}-${toIn.value}.csv`,
        toCsv([[t('day'), t('site'), t('kind'), t('count')], ...r.perDay.map((row) => [row.day, siteName(row.siteId), kindText(row.kind), row.count])])) }, t('exportStatsCsv')),
      h('a', { class: 'btn', id: 'export-events', href: `/api/events.csv?${q}`, download: '' }, t('exportEventsCsv')),
      h('a', { class: 'btn', id: 'export-events-xlsx', href: `/api/events.xlsx?${q}`, download: '' }, t('exportEventsXlsx'))),
    h('div', { class: 'scroll' }, h('table', { id: 'stats-table' }, h('thead', {}, h('tr', {}, ['day', 'site', 'kind', 'count'].map((c) => h('th', {}, t(c))))),
      h('tbody', {}, r.perDay.map((row) => h('tr', {}, h('td', {}, row.day), h('td', {}, siteName(row.siteId)), h('td', {}, kindText(row.kind)), h('td', {}, row.count)))))));
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Alerts per day and kind as lines (SVG drawn here: no chart library needed for five lines). */
function trendChart(perDay, from, to) {
  const days = [];
  for (let d = from; d && d <= to && days.length < 400; d = zoneDate(zoneMidnight(d) + 36 * 3600000)) days.push(d);
  const per = new Map(KINDS.map((k) => [k, new Map()]));
  for (const row of perDay) per.get(row.kind)?.set(row.day, (per.get(row.kind).get(row.day) ?? 0) + row.count);
  const kinds = KINDS.filter((k) => per.get(k).size);
  if (!kinds.length || days.length === 0) return h('p', { class: 'muted', id: 'trend-chart' }, t('noData'));
  const W = 640, H = 220, L = 36, B = 28, T = 10;
  const max = Math.max(1, ...kinds.flatMap((k) => days.map((d) => per.get(k).get(d) ?? 0)));
  const x = (i) => L + (days.length === 1 ? (W - L) / 2 : (i * (W - L - 10)) / (days.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const ticks = [0, Math.ceil(max / 2), max].filter((v, i, a) => a.indexOf(v) === i);
  const every = Math.max(1, Math.ceil(days.length / 8));
  return h('div', { class: 'card trend' },
    svg('svg', { id: 'trend-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('trendChart') },
      ticks.map((v) => [svg('line', { x1: L, x2: W, y1: y(v), y2: y(v), class: 'grid' }), svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, v)]),
      days.map((d, i) => (i % every === 0 ? svg('text', { x: x(i), y: H - 8, 'text-anchor': i === 0 && days.length > 1 ? 'start' : i === days.length - 1 && days.length > 1 ? 'end' : 'middle', class: 'axis' }, d.slice(5)) : null)),
      kinds.map((k) => svg('polyline', { class: `line k-${k}`, 'data-kind': k, points: days.map((d, i) => `${x(i).toFixed(1)},${y(per.get(k).get(d) ?? 0).toFixed(1)}`).join(' ') }))),
    h('div', { class: 'legend' }, kinds.map((k) => h('span', { class: `key k-${k}` }, kindText(k)))));
}

/** Sites ranked by alerts in the range, with their overdue rectifications now. */
function ranking(perDay, siteName, overdue) {
  const by = new Map();
  for (const row of perDay) by.set(row.siteId, (by.get(row.siteId) ?? 0) + row.count);
  const late = new Map();
  for (const e of overdue) late.set(e.siteId, (late.get(e.siteId) ?? 0) + 1);
  const rows = [...new Set([...by.keys(), ...late.keys()])].map((id) => ({ id, n: by.get(id) ?? 0, late: late.get(id) ?? 0 }))
    .sort((a, b) => b.n - a.n || b.late - a.late || siteName(a.id).localeCompare(siteName(b.id)));
  if (!rows.length) return h('p', { class: 'muted', id: 'ranking' }, t('noData'));
  return h('table', { id: 'ranking' }, h('thead', {}, h('tr', {}, ['rank', 'site', 'count', 'overdue'].map((c) => h('th', {}, t(c))))),
    h('tbody', {}, rows.map((r, i) => h('tr', {}, h('td', {}, i + 1), h('td', {}, siteName(r.id)), h('td', {}, r.n), h('td', {}, r.late)))));
}

function toCsv(rows) {
  const cell = (v) => {
    let x = v == null ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(x)) x = `'${x}`;
    return /[",\r\n]/.test(x) ? `"${x.replace(/"/g, '""')}"` : x;
  };
  return `\ufeff${rows.map((r) => r.map(cell).join(',')).join('\r\n')}\r\n`;
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------- boot ----------
$('#lang').addEventListener('click', () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); renderShell(); route(); });
$('#logout').addEventListener('click', async () => {
  try { await api('POST', '/api/logout'); } catch { /* already gone */ }
  state.user = null;
  showLogin();
});

(async function boot() {
  setLang(getLang());
  try {
    const me = await fetch('/api/session', { credentials: 'same-origin' });
    const r = me.ok ? await me.json() : { user: null };
    if (!r.user) { showLogin(); return; }
    state.user = r.user;
    setTimeZone(r.user.timezone);
    state.csrf = r.csrfToken;
    start();
  } catch { showLogin(); }
})();
