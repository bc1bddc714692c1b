// Every text of the dashboard, zh-CN first, English second. Violation kinds and labels come from
// the wire contract (protocol/), served as /api/protocol.js, never copied here.
import { VIOLATION_TEXT, LABEL_TEXT } from '/api/protocol.js';

export const TEXT = {
  appTitle: { zh: '明厨亮灶 · 监管平台', en: 'Bright Kitchen · Supervision' },
  loginTitle: { zh: '登录', en: 'Sign in' },
  username: { zh: '用户名', en: 'Username' },
  password: { zh: '密码', en: 'Password' },
  login: { zh: '登录', en: 'Sign in' },
  logout: { zh: '退出', en: 'Sign out' },
  langToggle: { zh: 'English', en: '中文' },
  navAlerts: { zh: '告警', en: 'Alerts' },
  navOverdue: { zh: '逾期', en: 'Overdue' },
  navVoice: { zh: '语音喊话', en: 'Voice' },
  navSites: { zh: '站点', en: 'Sites' },
  navStats: { zh: '统计', en: 'Statistics' },
  role_canteen_manager: { zh: '食堂负责人', en: 'Canteen manager' },
  role_vice_principal: { zh: '分管副校长', en: 'Vice-principal' },
  role_inspector: { zh: '监管人员', en: 'Inspector' },
  byOffice: { zh: '按监管层级汇总', en: 'By supervision office' },
  officeLevel: { zh: '层级', en: 'Level' },
  office: { zh: '监管部门', en: 'Office' },
  sites: { zh: '食堂数', en: 'Sites' },
  role_district: { zh: '区县监管部门', en: 'District / county office' },
  role_township: { zh: '乡镇监管所', en: 'Township office' },
  role_city: { zh: '市级监管部门', en: 'City office' },
  role_admin: { zh: '管理员', en: 'Administrator' },
  site: { zh: '站点', en: 'Site' },
  camera: { zh: '摄像头', en: 'Camera' },
  kind: { zh: '类型', en: 'Kind' },
  status: { zh: '状态', en: 'Status' },
  from: { zh: '开始日期', en: 'From' },
  to: { zh: '结束日期', en: 'To' },
  all: { zh: '全部', en: 'All' },
  apply: { zh: '筛选', en: 'Filter' },
  reset: { zh: '重置', en: 'Reset' },
  loadMore: { zh: '加载更多', en: 'Load more' },
  noEvents: { zh: '暂无告警', en: 'No alerts' },
  status_open: { zh: '待处理', en: 'Open' },
  status_acknowledged: { zh: '已确认', en: 'Acknowledged' },
  status_rectified: { zh: '已整改', en: 'Rectified' },
  status_closed: { zh: '已关闭', en: 'Closed' },
  status_reopened: { zh: '已重开', en: 'Reopened' },
  // notification log: channels and delivery states
  channel_mqtt: { zh: '手机推送 (MQTT)', en: 'Phone push (MQTT)' },
  channel_dashboard: { zh: '管理平台', en: 'Dashboard' },
  channel_wecom: { zh: '企业微信机器人', en: 'WeCom robot' },
  channel_dingtalk: { zh: '钉钉机器人', en: 'DingTalk robot' },
  delivery_pending: { zh: '待发送', en: 'Pending' },
  delivery_sent: { zh: '已送达', en: 'Sent' },
  delivery_retrying: { zh: '重试中', en: 'Retrying' },
  delivery_failed: { zh: '发送失败', en: 'Failed' },
  severity_1: { zh: '一级', en: 'Tier 1' },
  severity_2: { zh: '二级', en: 'Tier 2' },
  severity_3: { zh: '三级', en: 'Tier 3' },
  overdue: { zh: '已逾期', en: 'Overdue' },
  deadline: { zh: '整改期限', en: 'Deadline' },
  raisedAt: { zh: '发生时间', en: 'Raised' },
  receivedAt: { zh: '接收时间', en: 'Received' },
  score: { zh: '置信度', en: 'Score' },
  zone: { zh: '区域', en: 'Zone' },
  label: { zh: '目标', en: 'Object' },
  ackBy: { zh: '确认人', en: 'Acknowledged by' },
  experimental: { zh: '试验模型', en: 'Experimental' },
  back: { zh: '返回', en: 'Back' },
  detail: { zh: '详情', en: 'Details' },
  acknowledge: { zh: '确认告警', en: 'Acknowledge' },
  rectify: { zh: '提交整改', en: 'Submit rectification' },
  reviewClose: { zh: '复核通过并关闭', en: 'Review: close' },
  reviewReopen: { zh: '复核不通过，重开', en: 'Review: reopen' },
  note: { zh: '备注', en: 'Note' },
  rectifyNote: { zh: '整改说明', en: 'What was done' },
  photo: { zh: '整改照片', en: 'Photo' },
  submit: { zh: '提交', en: 'Submit' },
  done: { zh: '操作成功', en: 'Done' },
  deliveries: { zh: '通知记录', en: 'Notifications' },
  rectifications: { zh: '整改记录', en: 'Rectifications' },
  history: { zh: '处理记录', en: 'History' },
  recipient: { zh: '接收人', en: 'Recipient' },
  channel: { zh: '渠道', en: 'Channel' },
  attempts: { zh: '次数', en: 'Attempts' },
  level: { zh: '级别', en: 'Level' },
  by: { zh: '操作人', en: 'By' },
  at: { zh: '时间', en: 'At' },
  action: { zh: '操作', en: 'Action' },
  action_raised: { zh: '告警产生', en: 'Raised' },
  action_acknowledged: { zh: '确认', en: 'Acknowledged' },
  action_rectified: { zh: '整改', en: 'Rectified' },
  action_closed: { zh: '复核关闭', en: 'Closed' },
  action_reopened: { zh: '复核重开', en: 'Reopened' },
  action_escalated: { zh: '升级通知', en: 'Escalated' },
  actor_agent: { zh: '现场设备', en: 'Site device' },
  actor_central: { zh: '监管平台', en: 'Central' },
  cleanSnapshot: { zh: '原图', en: 'Clean image' },
  clip: { zh: '视频片段', en: 'Video clip' },
  clipArriving: { zh: '视频片段接收中（{n}/{m}）…', en: 'Video clip arriving ({n}/{m})…' },
  clipExpired: { zh: '视频片段已超过保存期限，已删除（抓拍仍保留）', en: 'The video clip was past its retention and has been deleted (the snapshots are kept)' },
  clipFailed: { zh: '视频片段损坏，未能保存', en: 'The video clip arrived damaged and was not kept' },
  clipHevc: { zh: 'H.265 视频：部分浏览器无法播放，可下载后观看', en: 'H.265 video: some browsers cannot play it; download it instead' },
  clipDownload: { zh: '下载视频', en: 'Download clip' },
  annotatedSnapshot: { zh: '标注图', en: 'Annotated' },
  overdueTitle: { zh: '逾期未整改', en: 'Overdue rectifications' },
  noOverdue: { zh: '没有逾期事项', en: 'Nothing overdue' },
  voiceTitle: { zh: '远程语音喊话', en: 'Voice warning' },
  allSpeakers: { zh: '全部喇叭', en: 'All speakers' },
  voiceType: { zh: '方式', en: 'Type' },
  voice_text: { zh: '文字转语音', en: 'Typed text' },
  voice_preset: { zh: '常用语', en: 'Preset phrase' },
  voice_audio: { zh: '录音', en: 'Recording' },
  text: { zh: '内容', en: 'Text' },
  preset: { zh: '常用语', en: 'Preset' },
  send: { zh: '发送', en: 'Send' },
  holdToTalk: { zh: '按住说话', en: 'Hold to talk' },
  recording: { zh: '录音中…松开发送', en: 'Recording… release to send' },
  micUnavailable: { zh: '无法使用麦克风', en: 'Microphone unavailable' },
  tooShort: { zh: '录音太短', en: 'Recording too short' },
  sentCommands: { zh: '已发送指令', en: 'Sent commands' },
  voice_state_sent: { zh: '已发送', en: 'Sent' },
  voice_state_played: { zh: '已播放', en: 'Played' },
  voice_state_failed: { zh: '播放失败', en: 'Failed' },
  voice_state_rejected: { zh: '被拒绝', en: 'Rejected' },
  issuedBy: { zh: '发送人', en: 'Issued by' },
  issuedAt: { zh: '发送时间', en: 'Issued' },
  stateAt: { zh: '状态时间', en: 'State time' },
  error: { zh: '错误', en: 'Error' },
  // admin: the organisation (/api/org/<kind>)
  navAdmin: { zh: '组织管理', en: 'Organisation' },
  org_cities: { zh: '城市', en: 'Cities' },
  org_districts: { zh: '区县', en: 'Districts / counties' },
  org_townships: { zh: '市场监管所', en: 'Township offices' },
  org_schools: { zh: '学校', en: 'Schools' },
  org_users: { zh: '用户', en: 'Users' },
  f_id: { zh: '编号', en: 'ID' },
  f_name: { zh: '名称', en: 'Name' },
  f_username: { zh: '用户名', en: 'Username' },
  f_role: { zh: '角色', en: 'Role' },
  f_cityId: { zh: '所属城市', en: 'City' },
  f_districtId: { zh: '所属区县', en: 'District / county' },
  f_townshipId: { zh: '所属市场监管所', en: 'Township office' },
  f_schoolId: { zh: '所属学校', en: 'School' },
  f_password: { zh: '新密码（留空不改）', en: 'New password (blank: unchanged)' },
  none: { zh: '（无）', en: '(none)' },
  add: { zh: '新建', en: 'New' },
  edit: { zh: '编辑', en: 'Edit' },
  save: { zh: '保存', en: 'Save' },
  remove: { zh: '删除', en: 'Delete' },
  confirmRemove: { zh: '确定删除？', en: 'Delete this record?' },
  saved: { zh: '已保存', en: 'Saved' },
  sitesTitle: { zh: '站点与摄像头', en: 'Sites and cameras' },
  online: { zh: '在线', en: 'Online' },
  offline: { zh: '离线', en: 'Offline' },
  connecting: { zh: '连接中', en: 'Connecting' },
  lastSeen: { zh: '最后在线', en: 'Last seen' },
  school: { zh: '学校', en: 'School' },
  district: { zh: '区县', en: 'District' },
  fps: { zh: '帧率', en: 'fps' },
  liveView: { zh: '实时画面', en: 'Live view' },
  liveConnecting: { zh: '正在连接视频流…', en: 'Connecting to the stream…' },
  liveConnected: { zh: '视频流已连接', en: 'Stream connected' },
  liveClosed: { zh: '视频流已断开', en: 'Stream closed' },
  liveNoPicture: { zh: '尚未收到画面', en: 'No picture yet' },
  bytes: { zh: '字节', en: 'bytes' },
  frames: { zh: '帧', en: 'frames' },
  close: { zh: '关闭', en: 'Close' },
  statsTitle: { zh: '告警统计', en: 'Alert statistics' },
  day: { zh: '日期', en: 'Day' },
  count: { zh: '数量', en: 'Count' },
  total: { zh: '合计', en: 'Total' },
  timeToAck: { zh: '确认用时', en: 'Time to acknowledge' },
  median: { zh: '中位数', en: 'Median' },
  p90: { zh: '90 分位', en: 'p90' },
  acked: { zh: '已确认数', en: 'Acknowledged' },
  perKindChart: { zh: '按类型', en: 'By kind' },
  trendChart: { zh: '每日趋势', en: 'Daily trend' },
  ranking: { zh: '食堂排名（告警数、逾期未整改）', en: 'Ranking of sites (alerts, overdue rectifications)' },
  rank: { zh: '名次', en: 'Rank' },
  exportStatsCsv: { zh: '导出统计 (CSV)', en: 'Export statistics (CSV)' },
  exportEventsCsv: { zh: '导出告警明细 (CSV)', en: 'Export alerts (CSV)' },
  exportEventsXlsx: { zh: '导出告警明细 (Excel)', en: 'Export alerts (Excel)' },
  noData: { zh: '暂无数据', en: 'No data' },
  live: { zh: '实时', en: 'Live' },
  disconnected: { zh: '推送已断开，重连中…', en: 'Push disconnected, reconnecting…' },
  sessionExpired: { zh: '登录已过期，请重新登录', en: 'Session expired, please sign in again' },
  minutes: { zh: '分钟', en: 'min' },
  seconds: { zh: '秒', en: 's' },
  hours: { zh: '小时', en: 'h' },
  newAlert: { zh: '新告警', en: 'New alert' },
};

let lang = localStorage.getItem('bk_lang') === 'en' ? 'en' : 'zh';

export function getLang() {
  return lang;
}

export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('bk_lang', lang);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

export function t(key) {
  const entry = TEXT[key];
  return entry ? entry[lang] : key;
}

export function kindText(kind) {
  return VIOLATION_TEXT[kind]?.[lang] ?? kind;
}

export function labelText(label) {
  return LABEL_TEXT[label]?.[lang] ?? label;
}

export const KINDS = Object.keys(VIOLATION_TEXT);

let timeZone = 'Asia/Shanghai';
/** The zone times are shown in: the sites' (from the login answer), whatever the browser's is. */
export function setTimeZone(tz) {
  if (tz) timeZone = tz;
}

/** "YYYY-MM-DD" of `ms` in the sites' zone (a date input's value). */
export function zoneDate(ms) {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

/** Milliseconds of midnight starting the date "YYYY-MM-DD" in the sites' zone (a date filter's bound). */
export function zoneMidnight(s) {
  const [y, m, d] = s.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  const wall = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .formatToParts(guess).reduce((o, p) => ({ ...o, [p.type]: Number(p.value) }), {});
  const offset = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second) - guess;
  return guess - offset;
}

export function fmtTime(ms) {
  if (ms == null) return '–';
  return new Date(ms).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false, timeZone });
}

export function fmtDuration(sec) {
  if (sec == null || !Number.isFinite(sec)) return '–';
  if (sec < 90) return `${Math.round(sec)} ${t('seconds')}`;
  if (sec < 5400) return `${(sec / 60).toFixed(1)} ${t('minutes')}`;
  return `${(sec / 3600).toFixed(1)} ${t('hours')}`;
}
