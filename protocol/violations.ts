/** The violation kinds the regulators name, with their zh-CN / English texts. */
export const VIOLATION_KINDS = ['no_hat', 'no_mask', 'smoking', 'mixed_boards', 'rodent'] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export const VIOLATION_TEXT: Record<ViolationKind, { zh: string; en: string }> = {
  no_hat: { zh: '未戴厨师帽', en: 'No chef hat' },
  no_mask: { zh: '未戴口罩', en: 'No face mask' },
  smoking: { zh: '抽烟', en: 'Smoking' },
  mixed_boards: { zh: '生熟案板刀具混放', en: 'Raw/cooked boards or knives mixed' },
  rodent: { zh: '老鼠等动物进入', en: 'Rodent or animal in kitchen' },
};

/** Tier 1: immediate alert to operator and regulator; tier 2: fix by a deadline; tier 3: routine. */
export const SEVERITIES = [1, 2, 3] as const;
export type Severity = (typeof SEVERITIES)[number];
