/**
 * CSV exports of the alert list, for Excel (UTF-8 with a BOM, CRLF) and anything else. Cells that a
 * spreadsheet would run as a formula (=, +, -, @ first) are quoted with a leading apostrophe: an
 * alert's camera name comes from a site's config and must not become code on an inspector's PC.
 */
import type { EventView } from '../store/types.js';

const STATUS_ZH: Record<string, string> = { open: '待处理', acknowledged: '已确认', rectified: '已整改', closed: '已关闭', reopened: '已重开' };
const TIER_ZH = ['', '一级', '二级', '三级'];

export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csv(rows: readonly (readonly unknown[])[]): string {
  return `\ufeff${rows.map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

export function eventsCsv(events: readonly EventView[], lang: 'zh' | 'en', timeZone: string): string {
  const t = (ms: number | null) => (ms === null ? '' : new Date(ms).toLocaleString('sv-SE', { timeZone, hour12: false }));
  const head =
    lang === 'zh'
      ? ['编号', '食堂', '摄像头', '类型', '级别', '状态', '发生时间', '整改期限', '逾期', '确认人', '确认时间']
      : ['id', 'site', 'camera', 'kind', 'tier', 'status', 'raised at', 'deadline', 'overdue', 'acknowledged by', 'acknowledged at'];
  return csv([
    head,
    ...events.map((e) => [
      e.id,
      e.siteName,
      e.cameraName,
      lang === 'zh' ? e.kindText : e.kindTextEn,
      lang === 'zh' ? TIER_ZH[e.severity] : e.severity,
      lang === 'zh' ? (STATUS_ZH[e.status] ?? e.status) : e.status,
      t(e.raisedAt),
      t(e.deadlineAt),
      e.overdue ? (lang === 'zh' ? '是' : 'yes') : '',
      e.ackByName ?? e.ackBy ?? '',
      t(e.ackAt),
    ]),
  ]);
}
