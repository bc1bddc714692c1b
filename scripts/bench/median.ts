/**
 * Medians of repeated benchmark runs, as the table in docs/performance.md.
 *
 *   npx tsx scripts/bench/median.ts var/bench/results.jsonl [more.jsonl ...]
 *
 * Input: JSON lines written by `npm run bench -- ... --json >> file`. Runs are grouped by cameras,
 * fps and configuration; each figure is the median over the group's runs (n says how many).
 */
import { readFileSync } from 'node:fs';

type Run = Record<string, any>;

function median(xs: (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const COLUMNS: [string, (r: Run) => number | null | undefined][] = [
  ['pipe inf/s', (r) => r.pipelineInferencesPerSec],
  ['bare inf/s', (r) => r.bareInferencesPerSec],
  ['efficiency', (r) => r.efficiency],
  ['limit inf/s', (r) => r.limitInferencesPerSec],
  ['eff. vs limit', (r) => r.efficiencyVsLimit],
  ['bare cpu ms', (r) => r.bareCpuMsPerInference],
  ['pipe cpu ms', (r) => r.pipelineCpuMsPerInference],
  ['overhead', (r) => r.overheadFraction],
  ['cam fps min', (r) => r.perCameraFps?.min],
  ['cam fps med', (r) => r.perCameraFps?.median],
  ['frames in', (r) => r.framesIn],
  ['dropped', (r) => r.framesDropped],
  ['cpu %', (r) => r.cpuPercent],
  ['ffmpeg %', (r) => r.ffmpegCpuPercent],
  ['decode bare %', (r) => r.decodeCpuPercentBare],
  ['rss start', (r) => r.rssMB?.start],
  ['rss max', (r) => r.rssMB?.max],
  ['rss end', (r) => r.rssMB?.end],
  ['alert p50 ms', (r) => r.alertLatencyMs?.p50],
  ['alert p95 ms', (r) => r.alertLatencyMs?.p95],
  ['lag p50 1st half ms', (r) => r.frameLagMs?.firstHalfP50],
  ['lag p50 2nd half ms', (r) => r.frameLagMs?.secondHalfP50],
  ['still/busy cost', (r) => r.motionGate?.stillCostRatio],
  ['others cpu %', (r) => r.machine?.otherCpuPercent],
];

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: npx tsx scripts/bench/median.ts <results.jsonl> ...\n');
  process.exit(2);
}
const runs: Run[] = files.flatMap((f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Run),
);
const groups = new Map<string, Run[]>();
for (const r of runs) {
  const c = r.config ?? {};
  const key = `${r.cameras} cam x ${r.fps} fps, ${r.seconds} s, threads ${c.threads}${c.keyframesOnly ? ', keyframes' : ''}, w ${c.frameWidth}, gop ${c.gop}${c.motion === false ? ', no motion' : ''}${c.spinning ? ', spinning' : ''}${c.workers ? ', workers' : ''}${c.foodZones ? ', food zones' : ''}, models ${(c.models ?? []).join('+')}`;
  groups.set(key, [...(groups.get(key) ?? []), r]);
}
const fmt = (x: number | null) => (x === null ? '–' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2));
process.stdout.write(`| run | n | ${COLUMNS.map(([h]) => h).join(' | ')} |\n|${'---|'.repeat(COLUMNS.length + 2)}\n`);
for (const [key, rs] of [...groups].sort((a, b) => a[1][0]!.cameras - b[1][0]!.cameras)) {
  process.stdout.write(`| ${key} | ${rs.length} | ${COLUMNS.map(([, f]) => fmt(median(rs.map(f)))).join(' | ')} |\n`);
}
