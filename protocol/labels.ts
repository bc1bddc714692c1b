/** Canonical detection labels. Every model's class map points into this list. */
export const LABELS = [
  'person', 'face', 'masked_face', 'head', 'chef_hat', 'cigarette',
  'rodent', 'cat', 'dog', 'knife', 'cutting_board',
  // Colour-coded tools (生熟分开): custom kitchen models that tell raw from cooked emit these.
  'raw_board', 'raw_knife', 'cooked_board', 'cooked_knife',
] as const;
export type CanonicalLabel = (typeof LABELS)[number];

export const LABEL_TEXT: Record<CanonicalLabel, { zh: string; en: string }> = {
  person: { zh: '人员', en: 'person' },
  face: { zh: '未戴口罩', en: 'bare face' },
  masked_face: { zh: '戴口罩', en: 'masked face' },
  head: { zh: '未戴帽子', en: 'bare head' }, // the head cascade reports covered heads as chef_hat
  chef_hat: { zh: '厨师帽', en: 'chef hat' },
  cigarette: { zh: '吸烟', en: 'smoking' },
  rodent: { zh: '老鼠', en: 'rodent' },
  cat: { zh: '猫', en: 'cat' },
  dog: { zh: '狗', en: 'dog' },
  knife: { zh: '刀具', en: 'knife' },
  cutting_board: { zh: '案板', en: 'cutting board' },
  raw_board: { zh: '生食案板', en: 'raw-food board' },
  raw_knife: { zh: '生食刀具', en: 'raw-food knife' },
  cooked_board: { zh: '熟食案板', en: 'cooked-food board' },
  cooked_knife: { zh: '熟食刀具', en: 'cooked-food knife' },
};

/** Extensible: a model may emit labels beyond the list; they keep their own name as text. */
export function labelText(label: string, lang: 'zh' | 'en' = 'zh'): string {
  return (LABEL_TEXT as Record<string, { zh: string; en: string }>)[label]?.[lang] ?? label;
}
