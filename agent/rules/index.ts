export { RuleEngine, type Violation, type RuleEngineOptions, type TrackedRuleDetection } from './engine.js';
export { builtinRules, mergeRules, rulesForSite, RAW_TOOLS, COOKED_TOOLS } from './builtin.js';
export { evaluateStill, type StillViolation, type StillOptions } from './still.js';
export { matchSubjects, anchor, excuses, type RuleDetection, type FrameSize } from './match.js';
export { inServiceHours, localDayMinute, checkTimeZone, type ServiceHours, type Day } from './schedule.js';
