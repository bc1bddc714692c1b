/**
 * central CLI.
 *   npm run central -- --config config/central.yaml        run the service (SIGTERM/SIGINT: clean stop)
 *   npm run central -- --config FILE --check               validate the config and exit
 *   npm run central -- hash-password [--mosquitto]         read a password on stdin, print its hash
 *   npm run central -- mosquitto-config --config FILE --out DIR [--host H] [--port N]
 */
import { parseArgs } from 'node:util';
import { log } from '../common/log.js';
import { hashPassword, hashPasswordMosquitto } from './auth/password.js';
import { mosquittoFiles, writeMosquittoFiles } from './broker/mosquitto.js';
import { ConfigError, loadCentralConfig } from './config/load.js';
import { startCentral } from './central.js';
import { startHttp } from './http/index.js';
import { serviceReady } from '../common/systemd.js';

const HELP = `bright-kitchen central service

Usage:
  npm run central -- --config <file>            run central (broker, ingest, routing, notification, voice)
  npm run central -- --config <file> --check    validate the config and exit
  npm run central -- hash-password [--mosquitto]
        read a password from stdin (one line) and print a hash for the YAML:
        default scrypt (passwordHash / mqttPasswordHash with the embedded broker);
        --mosquitto: Mosquitto's $7$ format (works with both brokers)
  npm run central -- mosquitto-config --config <file> --out <dir> [--host 127.0.0.1] [--port 1883]
        write passwd, acl and mosquitto.conf for an external Mosquitto from the org config
        (central's own account from the env vars named by broker.usernameEnv / passwordEnv)

Environment: LOG_LEVEL (pino level, default info).
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function fail(msg: string, code = 2): never {
  process.stderr.write(`${msg}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const cmd = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'run';
  const rest = cmd === 'run' ? argv : argv.slice(1);
  let args;
  try {
    args = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, check: { type: 'boolean' },
        mosquitto: { type: 'boolean' }, out: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`);
  }
  if (args.help) { process.stdout.write(HELP); return; }

  if (cmd === 'hash-password') {
    const pw = await readStdin();
    if (!pw) fail('hash-password: no password on stdin');
    process.stdout.write(`${args.mosquitto ? await hashPasswordMosquitto(pw) : await hashPassword(pw)}\n`);
    return;
  }
  if (!args.config) fail(`--config <file> is required\n\n${HELP}`);
  let config;
  try {
    config = loadCentralConfig(args.config);
  } catch (err) {
    if (err instanceof ConfigError) fail(`config error: ${err.message}`);
    throw err;
  }

  if (cmd === 'mosquitto-config') {
    if (!args.out) fail('mosquitto-config: --out <dir> is required');
    let central: { username: string; passwordHash: string } | null = null;
    if (config.broker.mode === 'external') {
      const u = process.env[config.broker.usernameEnv], p = process.env[config.broker.passwordEnv];
      if (!u || !p) fail(`mosquitto-config: set ${config.broker.usernameEnv} and ${config.broker.passwordEnv} (central's broker account)`);
      central = { username: u, passwordHash: await hashPasswordMosquitto(p) };
    } else {
      process.stderr.write('note: broker.mode is embedded; writing site and user accounts only (no central account)\n');
    }
    const port = args.port ? Number(args.port) : 1883;
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`--port: expected 1-65535 (got ${args.port})`);
    const files = mosquittoFiles(config.org, config.topicPrefix, central, { host: args.host ?? '127.0.0.1', port }, args.out);
    writeMosquittoFiles(args.out, files);
    for (const s of files.skipped) process.stderr.write(`skipped ${s}\n`);
    process.stdout.write(`wrote ${args.out}/passwd, acl, mosquitto.conf\n`);
    return;
  }
  if (cmd !== 'run') fail(`unknown command "${cmd}"\n\n${HELP}`);
  if (args.check) { process.stdout.write(`${args.config}: ok (${config.org.sites.length} sites, ${config.org.users.length} users)\n`); return; }

  const central = await startCentral(config);
  const http = await startHttp(central, config.http.tls ? { tls: config.http.tls } : {});
  log.info({ dashboard: http.url, broker: central.brokerUrl, voicePublicKey: `${config.dataDir}/voice-signing.pub.pem` }, 'central running');
  const unready = serviceReady(`dashboard ${http.url}`);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    unready();
    log.info({ sig }, 'stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    http.close().then(() => central.stop()).then(() => process.exit(0), (err: Error) => { log.error({ err: err.message }, 'stop failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err: Error) => {
  log.error({ err: err.message }, 'central failed');
  process.stderr.write(`central: ${err.message}\n`);
  process.exit(1);
});
