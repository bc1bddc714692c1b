/**
 * Exports of the alert list: CSV (UTF-8 with a BOM, CRLF: Excel reads it) and XLSX (exceljs). Cells
 * that a spreadsheet would run as a formula (=, +, -, @ first) get a leading apostrophe in CSV; in
 * XLSX every cell is written as a value, never a formula. An alert's camera name comes from a site's
 * config and must not become code on an inspector's PC.
 */
import ExcelJS from 'exceljs';
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

/** The alert list as rows, a header first: the same for CSV and XLSX. */
export function eventRows(events: readonly EventView[], lang: 'zh' | 'en', timeZone: string): (string | number)[][] {
  const t = (ms: number | null) => (ms === null ? '' : new Date(ms).toLocaleString('sv-SE', { timeZone, hour12: false }));
  const head =
    lang === 'zh'
      ? ['编号', '食堂', '摄像头', '类型', '级别', '状态', '发生时间', '整改期限', '逾期', '确认人', '确认时间']
      : ['id', 'site', 'camera', 'kind', 'tier', 'status', 'raised at', 'deadline', 'overdue', 'acknowledged by', 'acknowledged at'];
  return [
    head,
    ...events.map((e) => [
      e.id,
      e.siteName,
      e.cameraName,
      lang === 'zh' ? e.kindText : e.kindTextEn,
      lang === 'zh' ? (TIER_ZH[e.severity] ?? String(e.severity)) : e.severity,
      lang === 'zh' ? (STATUS_ZH[e.status] ?? e.status) : e.status,
      t(e.raisedAt),
      t(e.deadlineAt),
      e.overdue ? (lang === 'zh' ? '是' : 'yes') : '',
      e.ackByName ?? e.ackBy ?? '',
      t(e.ackAt),
    ]),
  ];
}

export async function xlsx(sheetName: string, rows: readonly (readonly (string | number)[])[]): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet(sheetName);
  for (const r of rows) ws.addRow([...r]);
  ws.getRow(1).font = { bold: true };
  ws.views = [{ state: 'frozen', ySplit: 1 }];
  ws.columns.forEach((c) => (c.width = 18));
  return Buffer.from(await wb.xlsx.writeBuffer());
}
