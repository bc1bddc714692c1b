/**
 * Robot webhooks of WeCom (企业微信群机器人) and DingTalk (钉钉自定义机器人): message formats, the
 * DingTalk signature, and one HTTP POST. Texts are zh-CN first with an English line.
 */
import { createHmac } from 'node:crypto';
import { VIOLATION_TEXT } from '../../protocol/violations.js';
import type { EventView } from '../store/types.js';

export interface AlertText {
  event: EventView;
  level: number;
  snapshotUrl: string;
}

const TIER_ZH = ['', '一级', '二级', '三级'];
const LEVEL_ZH = ['食堂负责人', '分管副校长', '区监管部门'];
const LEVEL_EN = ['canteen manager', 'vice-principal', 'district inspectors'];

export function formatTime(ms: number, timeZone: string): string {
  return new Date(ms).toLocaleString('sv-SE', { timeZone, hour12: false }); // 2024-05-01 12:00:00
}

/** An alert as plain text: a title, zh-CN facts one per line, one English sentence (no markup). */
export function alertText(a: AlertText, timeZone: string): { title: string; facts: string[]; en: string } {
  const e = a.event;
  const zh = VIOLATION_TEXT[e.kind]?.zh ?? e.kind;
  const en = VIOLATION_TEXT[e.kind]?.en ?? e.kind;
  return {
    title: `【${TIER_ZH[e.severity]}告警】${e.siteName} · ${zh}`,
    facts: [
      `摄像头：${e.cameraName || e.cameraId}`,
      `时间：${formatTime(e.raisedAt, timeZone)}`,
      `编号：${e.id}`,
      ...(a.level > 0 ? [`升级：未及时确认，已通知${LEVEL_ZH[a.level] ?? ''}`] : []),
    ],
    en: `${en} at ${e.siteName} (${e.cameraName || e.cameraId}), tier ${e.severity}${a.level > 0 ? `, escalated to ${LEVEL_EN[a.level] ?? a.level}` : ''}.`,
  };
}

/** The same alert as robot Markdown: a heading, quoted facts, the snapshot link, the English line. */
export function alertLines(a: AlertText, timeZone: string): { title: string; lines: string[] } {
  const t = alertText(a, timeZone);
  return { title: t.title, lines: [`### ${t.title}`, ...t.facts.map((f) => `> ${f}`), `> [查看抓拍](${a.snapshotUrl})`, t.en] };
}

/** One message for one or several alerts (several when the queue backed up). */
export function markdownFor(alerts: AlertText[], timeZone: string): { title: string; text: string } {
  if (alerts.length === 1) {
    const { title, lines } = alertLines(alerts[0]!, timeZone);
    return { title, text: lines.join('\n') };
  }
  const title = `${alerts.length} 条明厨亮灶告警 (${alerts.length} kitchen alerts)`;
  const parts = [`### ${title}`];
  alerts.forEach((a, i) => {
    const { lines } = alertLines(a, timeZone);
    parts.push('', `**${i + 1}.** ${lines[0]!.replace(/^### /, '')}`, ...lines.slice(1));
  });
  return { title, text: parts.join('\n') };
}

export function wecomBody(md: { title: string; text: string }): unknown {
  return { msgtype: 'markdown', markdown: { content: md.text } };
}
export function dingtalkBody(md: { title: string; text: string }): unknown {
  return { msgtype: 'markdown', markdown: { title: md.title, text: md.text } };
}

/** DingTalk 加签: sign = urlencode(base64(HmacSHA256(secret, timestamp + "\n" + secret))). */
export function dingtalkSign(secret: string, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64');
  return encodeURIComponent(mac);
}
export function dingtalkSignedUrl(url: string, secret: string | undefined, timestamp = Date.now()): string {
  if (!secret) return url;
  return `${url}${url.includes('?') ? '&' : '?'}timestamp=${timestamp}&sign=${dingtalkSign(secret, timestamp)}`;
}

/** POST; resolves when the robot said errcode 0, rejects with a readable reason otherwise. */
export async function postWebhook(type: 'wecom' | 'dingtalk', url: string, secret: string | undefined, md: { title: string; text: string }, timeoutMs: number): Promise<void> {
  const target = type === 'dingtalk' ? dingtalkSignedUrl(url, secret) : url;
  const body = JSON.stringify(type === 'wecom' ? wecomBody(md) : dingtalkBody(md));
  const res = await fetch(target, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  let json: { errcode?: number; errmsg?: string } = {};
  try { json = JSON.parse(text) as typeof json; } catch { /* some proxies answer plain text */ }
  if (json.errcode !== undefined && json.errcode !== 0) throw new Error(`robot errcode ${json.errcode}: ${json.errmsg ?? ''}`);
}
