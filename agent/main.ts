/**
 * `npm run agent -- --config <site.yaml> [--check]`: run the edge agent of one canteen.
 * Exit codes: 0 clean stop, 2 bad config or arguments, 1 failure to start.
 */
import { parseArgs } from 'node:util';
import { HEAP_FLAG, heapSized } from '../common/heap.js';
import { log } from '../common/log.js';
import { serviceReady } from '../common/systemd.js';
import { Agent } from './agent.js';
import { ConfigError, loadSiteConfig } from './config/load.js';

const HELP = `Usage: npm run agent -- --config <site.yaml> [--check]

Runs the bright-kitchen edge agent: pulls the site's RTSP cameras, detects violations, keeps
evidence and sends events to central over MQTT (credentials from the environment variables named
in the config's uplink section).

Options:
  -c, --config <file>   site configuration (see config/site.example.yaml)
      --check           validate the configuration and model files, then exit
  -h, --help            this help

Environment: LOG_LEVEL (info), BK_MQTT_USERNAME / BK_MQTT_PASSWORD (or the names the config gives).`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({ options: { config: { type: 'string', short: 'c' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!args.values.config) {
    process.stderr.write(`missing --config <file>\n\n${HELP}\n`);
    return 2;
  }
  let config;
  try {
    config = loadSiteConfig(args.values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (args.values.check) {
    const { ModelPack } = await import('./detect/index.js');
    const pack = await ModelPack.fromConfig(config.models);
    await pack.close();
    const boards = config.cameras.filter((c) => c.zones.some((z) => z.kind === 'raw' || z.kind === 'cooked')).map((c) => c.id);
    const boardText = boards.length ? `; board check on ${boards.join(', ')} (look with npm run zones -- --config ${args.values.config} --camera ${boards[0]})` : '';
    process.stdout.write(`${args.values.config}: ok (${config.cameras.length} cameras, ${config.models.pack.length} models${boardText})\n`);
    return 0;
  }
  if (!heapSized()) log.warn({ flag: HEAP_FLAG }, 'node started without an initial old-space size: garbage collection will run back to back under load (start with npm run agent, or pass the flag to node)');
  const agent = await Agent.start(config);
  const unready = serviceReady(`${config.cameras.length} cameras`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  unready();
  await agent.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`agent: ${err.message}\n`);
    log.fatal({ err }, 'agent failed');
    process.exit(1);
  },
);
