export { Tracker, type TrackInput, type Tracked, type TrackerOptions, type TrackSnapshot } from './tracker.js';
export { AttributeVoter, judgeOnce, type VoteOptions } from './attributes.js';
