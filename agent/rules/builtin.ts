/**
 * The built-in rule set, and merging of a site's `rules` over it.
 *
 * Defaults follow deployed bright-kitchen systems: 3 s persistence before the first alarm, a 30 s
 * repeat interval per tracked target, tiered severity (1 immediate, 2 fix by a deadline, 3 routine).
 *
 * mixed_boards (生熟不分) needs to know whether a board or knife is for raw or cooked food. Kitchens
 * colour-code them (e.g. red = raw, green = cooked), so that is a detector / cascade-classifier
 * output, not a rule: the rules expect the labels `raw_board`, `raw_knife`, `cooked_board`,
 * `cooked_knife` (extensible labels, see protocol/labels.ts) and fire when
 *   - a raw tool and a cooked tool are in the same zone (`mixed_boards`),
 *   - a raw tool lies in a zone of kind `cooked` (`mixed_boards_raw_in_cooked`),
 *   - a cooked tool lies in a zone of kind `raw` (`mixed_boards_cooked_in_raw`).
 * Boards lie still for hours, so these persist 10 s before alarming and repeat every 10 minutes.
 * The board colour check (detect/boards.ts) emits the board labels in raw / cooked zones; the rules
 * stay marked experimental because that check is measured on synthetic scenes only
 * (models/board_colours.md). Plain `cutting_board` / `knife` never trigger them.
 */
import { RuleSchema, type RuleConfig } from '../config/schema.js';
import { childLog } from '../../common/log.js';

const log = childLog({ stage: 'rules' });

export const RAW_TOOLS = ['raw_board', 'raw_knife'] as const;
export const COOKED_TOOLS = ['cooked_board', 'cooked_knife'] as const;

/** Fresh copies each call (callers may mutate). Every entry is validated by the site schema. */
export function builtinRules(): RuleConfig[] {
  const raw: unknown[] = [
    { id: 'no_mask', kind: 'no_mask', labels: ['face'], schedule: 'service', minScore: 0.6, minDurationSec: 3, cooldownSec: 30, severity: 2 },
    { id: 'no_hat', kind: 'no_hat', labels: ['head'], unless: ['chef_hat'], schedule: 'service', minScore: 0.5, minDurationSec: 3, cooldownSec: 30, severity: 3 },
    { id: 'smoking', kind: 'smoking', labels: ['cigarette'], schedule: 'always', minScore: 0.5, minDurationSec: 3, cooldownSec: 30, severity: 1 },
    { id: 'rodent', kind: 'rodent', labels: ['rodent', 'cat', 'dog'], schedule: 'closed', alwaysInFoodZones: true, minScore: 0.5, minDurationSec: 1, cooldownSec: 30, severity: 1 },
    { id: 'mixed_boards', kind: 'mixed_boards', labels: [...RAW_TOOLS], with: [...COOKED_TOOLS], schedule: 'always', minScore: 0.5, minDurationSec: 10, cooldownSec: 600, severity: 2, experimental: true },
    { id: 'mixed_boards_raw_in_cooked', kind: 'mixed_boards', labels: [...RAW_TOOLS], zones: ['cooked'], schedule: 'always', minScore: 0.5, minDurationSec: 10, cooldownSec: 600, severity: 2, experimental: true },
    { id: 'mixed_boards_cooked_in_raw', kind: 'mixed_boards', labels: [...COOKED_TOOLS], zones: ['raw'], schedule: 'always', minScore: 0.5, minDurationSec: 10, cooldownSec: 600, severity: 2, experimental: true },
  ];
  return raw.map((r) => RuleSchema.parse(r));
}

/**
 * Site rules over built-ins, by id: the same id replaces the built-in entirely, a new id adds a
 * rule, `enabled: false` removes it. Order: built-ins first (in their order), then new site rules.
 */
export function mergeRules(base: readonly RuleConfig[], site: readonly RuleConfig[]): RuleConfig[] {
  const byId = new Map<string, RuleConfig>();
  for (const r of base) byId.set(r.id, r);
  const seen = new Set<string>();
  for (const r of site) {
    if (seen.has(r.id)) throw new Error(`rules: rule id "${r.id}" appears twice in the site config`);
    seen.add(r.id);
    if (byId.has(r.id)) log.info({ ruleId: r.id }, 'site rule overrides the built-in rule');
    byId.set(r.id, r);
  }
  return [...byId.values()].filter((r) => r.enabled);
}

/** The effective rule set of a site: built-ins merged with its `rules`. */
export function rulesForSite(siteRules: readonly RuleConfig[] = []): RuleConfig[] {
  return mergeRules(builtinRules(), siteRules);
}
