/**
 * HTTP errors of the central API: `{ error, message, field? }`, message in zh-CN or English
 * depending on Accept-Language (zh first). Every handler throws an HttpError; the server turns it
 * into the answer, so no handler writes an error body by hand.
 */
export type Lang = 'zh' | 'en';

const MESSAGES = {
  bad_request: { zh: '请求无效', en: 'Bad request' },
  bad_json: { zh: '请求体不是有效的 JSON', en: 'Request body is not valid JSON' },
  invalid: { zh: '字段无效', en: 'Invalid field' },
  unsupported_media_type: { zh: '请求体须为 application/json', en: 'Request body must be application/json' },
  unauthenticated: { zh: '请先登录', en: 'Please log in' },
  bad_credentials: { zh: '用户名或密码错误', en: 'Wrong username or password' },
  rate_limited: { zh: '登录失败次数过多，请稍后再试', en: 'Too many failed logins, try again later' },
  too_many_requests: { zh: '请求过于频繁，请稍后再试', en: 'Too many requests, try again later' },
  csrf: { zh: 'CSRF 校验失败，请刷新页面', en: 'CSRF check failed, reload the page' },
  forbidden: { zh: '无权执行此操作', en: 'You are not allowed to do this' },
  not_found: { zh: '未找到', en: 'Not found' },
  method_not_allowed: { zh: '不支持的请求方法', en: 'Method not allowed' },
  too_large: { zh: '请求体过大', en: 'Request body too large' },
  conflict: { zh: '当前状态不允许此操作', en: 'Not allowed in the current state' },
  unavailable: { zh: '服务暂不可用', en: 'Service unavailable' },
  internal: { zh: '服务器内部错误', en: 'Internal server error' },
} as const;
export type ErrorCode = keyof typeof MESSAGES;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly field?: string,
    /** Extra detail appended to the localized message (e.g. the zod issue). */
    readonly detail?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${code}${field ? ` (${field})` : ''}${detail ? `: ${detail}` : ''}`);
  }
}

export const notFound = () => new HttpError(404, 'not_found');
export const forbidden = () => new HttpError(403, 'forbidden');

export function errorBody(err: HttpError, lang: Lang): { error: string; message: string; field?: string } {
  const base = MESSAGES[err.code][lang];
  const where = err.field ? (lang === 'zh' ? `：${err.field}` : `: ${err.field}`) : '';
  const message = `${base}${where}${err.detail ? ` (${err.detail})` : ''}`;
  return err.field !== undefined ? { error: err.code, message, field: err.field } : { error: err.code, message };
}

/** zh unless the client prefers English over Chinese. */
export function langOf(acceptLanguage: string | undefined): Lang {
  if (!acceptLanguage) return 'zh';
  const prefs = acceptLanguage
    .split(',')
    .map((part) => {
      const [tag, ...params] = part.trim().toLowerCase().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { tag: tag ?? '', q: q ? Number(q.slice(2)) || 0 : 1 };
    })
    .filter((p) => p.tag.startsWith('zh') || p.tag.startsWith('en'))
    .sort((a, b) => b.q - a.q);
  return prefs[0]?.tag.startsWith('en') ? 'en' : 'zh';
}
