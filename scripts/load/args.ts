/** The load generator's command line, parsed and checked with zod (exit 2 with one clear line on error). */
import { z } from 'zod';
import { formatIssues } from '../../protocol/messages.js';

export const USAGE = `usage: npm run load -- --sites N --cameras-per-site C --events-per-site-per-min R --seconds S [options]

Simulated canteen sites (real MQTT clients with their own broker accounts) send status and events with
real JPEG snapshots to M real central processes on one external Mosquitto started here; a recipient's
phone (MQTT, persistent session) and a dashboard (HTTP login + /api/stream) count what arrives.

  --sites N                    simulated sites, one MQTT connection each (1-20000, default 20)
  --cameras-per-site C         cameras per site: retained camera status, events spread over them (1-64, default 4)
  --events-per-site-per-min R  events per site per minute (0.01-600, default 1)
  --seconds S                  how long events are sent (1-3600, default 60)
  --instances M                central processes on the one broker (1-8, default 1; >1: shared subscription)
  --store sqlite|postgres      sqlite (default): each central its own SQLite file in its data dir; postgres: a private
                               PostgreSQL cluster started here (initdb, fsync off), one database and one files
                               directory shared by every central, removed at the end
  --pool-size P                with --store postgres: connections per central (store.poolSize, 1-200, default 10)
  --stats-interval S           seconds between a site's stats messages, as the agent's uplink.statsIntervalSec (0: none; default 60)
  --snapshot-width W           snapshot width in px, 16:9, JPEG q80 as the agent makes them (160-1920, default 640)
  --drain-seconds D            after sending, how long to wait for everything to arrive (1-600, default 60)
  --connect-concurrency K      site connections opened at a time (1-2000, default 100)
  --escalate-after E           tier-2 events not acknowledged escalate to the vice-principal after E seconds (routing.tier2.viceAfterMin;
                               default: central's 30 min, none in a run); the result counts each due event's escalations
  --kill-instance-at T         SIGKILL the last central T seconds into sending, and start it again --restart-after R seconds
                               later (as its service manager would); its dashboard then resumes with the same session cookie
  --restart-after R            seconds the killed central stays down (1-600, default 10)
  --db-down-at T               with --store postgres: stop PostgreSQL (immediate mode, connections cut) T seconds into sending
  --db-down-seconds D          and start it again D seconds later (1-600, default 10)
  --central-dir DIR            run central from this checkout (e.g. \`git archive HEAD | tar -x -C DIR\` with node_modules
                               linked in) instead of this working tree, so a measurement pins one commit
  --json                       one JSON object on stdout instead of the table
  --keep                       keep the run directory (configs, databases, logs) and print its path
  -h, --help                   this text

Progress goes to stderr; the result to stdout. CPU figures are percent of one core.`;

const num = (min: number, max: number, int = false) => {
  let s = z.coerce.number({ error: 'expected a number' }).min(min, `expected at least ${min}`).max(max, `expected at most ${max}`);
  if (int) s = s.int('expected a whole number');
  return s;
};

export const LoadArgsSchema = z.strictObject({
  sites: num(1, 20_000, true).default(20),
  camerasPerSite: num(1, 64, true).default(4),
  eventsPerSitePerMin: num(0.01, 600).default(1),
  seconds: num(1, 3600).default(60),
  instances: num(1, 8, true).default(1),
  store: z.enum(['sqlite', 'postgres'], { error: 'expected "sqlite" or "postgres"' }).default('sqlite'),
  poolSize: num(1, 200, true).default(10),
  statsInterval: num(0, 3600).default(60),
  snapshotWidth: num(160, 1920, true).default(640),
  drainSeconds: num(1, 600).default(60),
  connectConcurrency: num(1, 2000, true).default(100),
  escalateAfter: num(1, 3600).optional(),
  killInstanceAt: num(0, 3600).optional(),
  restartAfter: num(1, 600).default(10),
  dbDownAt: num(0, 3600).optional(),
  dbDownSeconds: num(1, 600).default(10),
  centralDir: z.string().min(1).optional(),
  json: z.boolean().default(false),
  keep: z.boolean().default(false),
});
export type LoadArgs = z.infer<typeof LoadArgsSchema>;

const FLAGS: Record<string, keyof LoadArgs> = {
  '--sites': 'sites',
  '--cameras-per-site': 'camerasPerSite',
  '--events-per-site-per-min': 'eventsPerSitePerMin',
  '--seconds': 'seconds',
  '--instances': 'instances',
  '--store': 'store',
  '--pool-size': 'poolSize',
  '--stats-interval': 'statsInterval',
  '--snapshot-width': 'snapshotWidth',
  '--drain-seconds': 'drainSeconds',
  '--connect-concurrency': 'connectConcurrency',
  '--escalate-after': 'escalateAfter',
  '--kill-instance-at': 'killInstanceAt',
  '--restart-after': 'restartAfter',
  '--db-down-at': 'dbDownAt',
  '--db-down-seconds': 'dbDownSeconds',
  '--central-dir': 'centralDir',
};
const SWITCHES: Record<string, keyof LoadArgs> = { '--json': 'json', '--keep': 'keep' };

export class ArgsError extends Error {}

/** `{ help: true }` for -h/--help; throws ArgsError naming the flag otherwise. */
export function parseLoadArgs(argv: readonly string[]): LoadArgs | { help: true } {
  const raw: Record<string, unknown> = {};
  const flagOf: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return { help: true };
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const key = FLAGS[flag];
    if (key) {
      const v = eq > 0 && a.startsWith('--') ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '' || v.startsWith('--')) throw new ArgsError(`${flag}: expected a value`);
      if (key in raw) throw new ArgsError(`${flag}: given twice`);
      raw[key] = v;
      flagOf[key] = flag;
      continue;
    }
    const sw = SWITCHES[a];
    if (sw) { raw[sw] = true; continue; }
    throw new ArgsError(`unknown argument "${a}"`);
  }
  const r = LoadArgsSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0]!;
    const key = String(first.path[0] ?? '');
    throw new ArgsError(`${flagOf[key] ?? key}: ${first.message} (got "${String(raw[key])}")${r.error.issues.length > 1 ? `; ${formatIssues(r.error.issues.slice(1))}` : ''}`);
  }
  const d = r.data;
  // faults must fall inside the sending window, and a database outage needs the database the tool runs
  for (const [key, at] of [['killInstanceAt', d.killInstanceAt], ['dbDownAt', d.dbDownAt]] as const) {
    if (at !== undefined && at >= d.seconds) throw new ArgsError(`${flagOf[key]}: ${at} s is not within the ${d.seconds} s of sending (--seconds)`);
  }
  if (d.dbDownAt !== undefined && d.store !== 'postgres') throw new ArgsError('--db-down-at: needs --store postgres (the tool restarts the PostgreSQL cluster it started)');
  return d;
}
