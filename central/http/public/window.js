// The public window (社会公众): /public/<slug>. No login, no cookies sent (credentials: 'omit'): the
// page shows only what /api/public/<slug> answers. Texts zh-CN first, English on the toggle (the same
// `bk_lang` choice as the dashboard); kind texts come from the wire contract (/api/protocol.js).
import { VIOLATION_TEXT } from '/api/protocol.js';

const TEXT = {
  brand: { zh: '明厨亮灶 · 公示', en: 'Bright Kitchen · Public window' },
  langToggle: { zh: 'English', en: '中文' },
  notFound: { zh: '未找到该公示页面', en: 'No such public page' },
  tooMany: { zh: '访问过于频繁，请稍后刷新', en: 'Too many requests, reload in a minute' },
  loadFailed: { zh: '加载失败，请稍后刷新', en: 'Could not load, reload later' },
  stillTitle: { zh: '后厨实时画面', en: 'Kitchen, live picture' },
  stillEvery: { zh: '每 {n} 秒刷新', en: 'refreshed every {n} s' },
  stillAt: { zh: '画面时间', en: 'Picture taken' },
  stillAlert: { zh: '实时画面暂不可用，显示最近一次告警抓拍（非实时）', en: 'Live picture unavailable: the latest alert picture (not live)' },
  stillNone: { zh: '暂时无法获取后厨画面', en: 'No picture from the kitchen camera right now' },
  recordTitle: { zh: '{m} 整改公示', en: 'Rectification record, {m}' },
  total: { zh: '本月告警', en: 'Alerts this month' },
  rectified: { zh: '已整改', en: 'Rectified' },
  open: { zh: '待整改', en: 'Open' },
  overdue: { zh: '逾期未整改', en: 'Overdue' },
  medianFix: { zh: '整改用时（中位数）', en: 'Time to rectify (median)' },
  byKind: { zh: '按类型', en: 'By kind' },
  kind: { zh: '类型', en: 'Kind' },
  count: { zh: '次数', en: 'Alerts' },
  recent: { zh: '最近告警', en: 'Latest alerts' },
  noAlerts: { zh: '本月暂无告警', en: 'No alerts this month' },
  fixedAfter: { zh: '{d} 后整改', en: 'rectified after {d}' },
  stateRectified: { zh: '已整改', en: 'Rectified' },
  stateOpen: { zh: '待整改', en: 'Open' },
  stateOverdue: { zh: '已逾期', en: 'Overdue' },
  minutes: { zh: '分钟', en: 'min' },
  hours: { zh: '小时', en: 'h' },
  days: { zh: '天', en: 'd' },
  notice: {
    zh: '本页面由食堂自愿公开，不显示人员姓名、处理备注等个人信息。画面与记录来自明厨亮灶智能监管系统。',
    en: 'Published by the canteen of its own accord; it shows no names of staff and no notes. Picture and record come from the Bright Kitchen supervision system.',
  },
};

let lang = localStorage.getItem('bk_lang') === 'en' ? 'en' : 'zh';
const t = (key, vars = {}) => (TEXT[key]?.[lang] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
const kindText = (k) => VIOLATION_TEXT[k]?.[lang] ?? k;
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

const slug = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const api = `/api/public/${encodeURIComponent(slug)}`;
let data = null;
let stillState = { kind: 'none', at: null };
let stillUrl = null;
let stillTimer = null;

function fmtTime(ms) {
  return new Date(ms).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false, timeZone: data?.timezone ?? 'Asia/Shanghai' });
}
function fmtDur(sec) {
  if (sec == null) return '–';
  if (sec < 60) return `< 1 ${t('minutes')}`;
  if (sec < 3600) return `${Math.round(sec / 60)} ${t('minutes')}`;
  if (sec < 72 * 3600) return `${(sec / 3600).toFixed(1)} ${t('hours')}`;
  return `${(sec / 86400).toFixed(1)} ${t('days')}`;
}
function monthText(m) {
  const [y, mo] = m.split('-').map(Number);
  return lang === 'zh' ? `${y}年${mo}月` : new Date(Date.UTC(y, mo - 1, 15)).toLocaleString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
}

function fail(key) {
  $('canteen').textContent = t(key);
  $('school').textContent = '';
  $('still-box').hidden = true;
  $('record').hidden = true;
}

function render() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  $('brand').textContent = t('brand');
  $('lang').textContent = t('langToggle');
  $('notice').textContent = t('notice');
  if (!data) return;
  document.title = `${data.canteen} · ${t('brand')}`;
  $('canteen').textContent = data.canteen;
  $('school').textContent = [data.school, data.district].filter(Boolean).join(' · ');
  renderStill();
  renderRecord();
}

function renderStill() {
  const box = $('still-box');
  box.hidden = !data.still;
  if (!data.still) return;
  $('still-title').textContent = `${t('stillTitle')} · ${t('stillEvery', { n: data.still.refreshSec })}`;
  const img = $('still');
  const msg = $('still-msg');
  img.alt = t('stillTitle');
  img.hidden = stillState.kind === 'none';
  msg.hidden = stillState.kind !== 'none';
  msg.textContent = t('stillNone');
  box.dataset.state = stillState.kind;
  $('still-at').textContent = stillState.kind === 'none' ? ''
    : `${stillState.kind === 'alert' ? `${t('stillAlert')} · ` : ''}${t('stillAt')}: ${stillState.at ? fmtTime(stillState.at) : '–'}`;
}

function tile(n, label, cls = '') {
  const d = el('div', 'tile');
  d.append(el('div', `n ${cls}`, String(n)), el('div', 'l', label));
  return d;
}

function renderRecord() {
  const r = data.record;
  $('record').hidden = !r;
  if (!r) return;
  $('record-title').textContent = t('recordTitle', { m: monthText(r.month) });
  $('tiles').replaceChildren(
    tile(r.total, t('total')),
    tile(r.rectified, t('rectified'), 'ok'),
    tile(r.open, t('open'), r.open ? 'bad' : ''),
    tile(r.overdue, t('overdue'), r.overdue ? 'bad' : ''),
    tile(fmtDur(r.timeToRectify.medianSec), t('medianFix')),
  );
  $('by-kind-title').textContent = t('byKind');
  $('th-kind').textContent = t('kind');
  $('th-count').textContent = t('count');
  $('th-count').className = 'num';
  $('th-rectified').textContent = t('rectified');
  $('th-rectified').className = 'num';
  const rows = r.byKind.map((k) => {
    const tr = el('tr');
    tr.append(el('td', '', kindText(k.kind)), el('td', 'num', String(k.count)), el('td', 'num', String(k.rectified)));
    return tr;
  });
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', 'empty', t('noAlerts'));
    td.colSpan = 3;
    tr.append(td);
    rows.push(tr);
  }
  $('kinds').replaceChildren(...rows);
  $('recent-title').textContent = t('recent');
  $('recent-title').hidden = !r.recent.length;
  $('recent').replaceChildren(...r.recent.map((x) => {
    const li = el('li');
    if (x.image) {
      const img = el('img');
      img.src = x.image;
      img.alt = kindText(x.kind);
      img.loading = 'lazy';
      li.append(img);
    }
    const state = x.state === 'rectified' ? 'rectified' : x.overdue ? 'overdue' : 'open';
    li.append(
      el('span', 'kind', kindText(x.kind)),
      el('span', 'muted', fmtTime(x.raisedAt)),
      el('span', `badge ${state}`, t(state === 'rectified' ? 'stateRectified' : state === 'overdue' ? 'stateOverdue' : 'stateOpen')),
    );
    if (x.rectifiedAfterSec != null) li.append(el('span', 'muted small', t('fixedAfter', { d: fmtDur(x.rectifiedAfterSec) })));
    return li;
  }));
}

async function loadRecord() {
  let res;
  try {
    res = await fetch(api, { credentials: 'omit', cache: 'no-store' });
  } catch {
    if (!data) fail('loadFailed');
    return;
  }
  if (res.status === 404) return fail('notFound');
  if (res.status === 429) return data ? undefined : fail('tooMany');
  if (!res.ok) return data ? undefined : fail('loadFailed');
  const first = !data;
  data = await res.json();
  render();
  if (first && data.still) refreshStill();
}

async function refreshStill() {
  clearTimeout(stillTimer);
  const every = (data.still.refreshSec || 5) * 1000;
  let wait = every;
  if (!document.hidden) {
    try {
      const res = await fetch(data.still.url, { credentials: 'omit', cache: 'no-store' });
      if (res.ok) {
        const blob = await res.blob();
        const url = URL.createObjectURL(blob);
        const img = $('still');
        await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = url; });
        if (stillUrl) URL.revokeObjectURL(stillUrl);
        stillUrl = url;
        stillState = { kind: res.headers.get('X-Still-Source') === 'alert' ? 'alert' : 'live', at: Number(res.headers.get('X-Captured-At')) || null };
      } else {
        if (res.status === 429) wait = Math.max(every, Number(res.headers.get('Retry-After') || 30) * 1000);
        stillState = res.status === 429 && stillState.kind !== 'none' ? stillState : { kind: 'none', at: null };
      }
    } catch {
      stillState = { kind: 'none', at: null };
    }
    renderStill();
  }
  stillTimer = setTimeout(refreshStill, wait);
}

$('lang').addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('bk_lang', lang);
  render();
});
document.addEventListener('visibilitychange', () => { if (!document.hidden && data?.still) refreshStill(); });

render();
loadRecord();
setInterval(loadRecord, 60_000);
