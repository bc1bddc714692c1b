/**
 * Where an installed service lives, and its systemd unit. One layout for the agent (a canteen's box)
 * and central:
 *   <root>/opt/bright-kitchen                 code (this checkout's files, node_modules, var/models)
 *   <root>/etc/bright-kitchen/<kind>.yaml     config (kept on upgrade)
 *   <root>/etc/bright-kitchen/<kind>.env      secrets as environment variables (mode 600, kept)
 *   <root>/var/lib/bright-kitchen/<kind>      data: outbox, evidence / store, snapshots (kept)
 *   <root>/etc/systemd/system/bk-<kind>.service
 * Logs go to the journal (stdout, pino JSON).
 */
import path from 'node:path';

export type ServiceKind = 'agent' | 'central';
export const SERVICE_USER = 'bk';

export interface ServicePaths {
  root: string;
  code: string;
  etc: string;
  config: string;
  env: string;
  data: string;
  unit: string;
}

export function servicePaths(kind: ServiceKind, root = '/'): ServicePaths {
  const r = (p: string) => path.join(root, p);
  return {
    root,
    code: r('opt/bright-kitchen'),
    etc: r('etc/bright-kitchen'),
    config: r(`etc/bright-kitchen/${kind}.yaml`),
    env: r(`etc/bright-kitchen/${kind}.env`),
    data: r(`var/lib/bright-kitchen/${kind}`),
    unit: r(`etc/systemd/system/bk-${kind}.service`),
  };
}

/** The ExecStart command line (also run as-is by the service test). */
export function execStart(kind: ServiceKind, p: ServicePaths, node = process.execPath): string[] {
  // The agent's heap flag: docs/performance.md, garbage collection. tsx resolves from WorkingDirectory.
  const flags = kind === 'agent' ? ['--initial-old-space-size=64'] : [];
  const main = kind === 'agent' ? 'agent/main.ts' : 'central/main.ts';
  return [node, ...flags, '--import', 'tsx', path.join(p.code, main), '--config', p.config];
}

export function unitFile(kind: ServiceKind, p: ServicePaths, node = process.execPath): string {
  const what = kind === 'agent' ? 'edge agent (cameras → detection → alerts)' : 'central service (alerts, dashboard, broker)';
  return `# Installed by npm run install-service (scripts/install-service.ts); reinstalling rewrites this file.
[Unit]
Description=Bright-kitchen 明厨亮灶 ${what}
Documentation=file://${p.code}/docs/deploy.md
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
# The process reports readiness and feeds the watchdog through systemd-notify (common/systemd.ts).
NotifyAccess=all
WatchdogSec=60
User=${SERVICE_USER}
Group=${SERVICE_USER}
${kind === 'agent' ? '# The speaker for voice warnings (ALSA).\nSupplementaryGroups=audio\n' : ''}WorkingDirectory=${p.code}
EnvironmentFile=-${p.env}
Environment=NODE_ENV=production
ExecStart=${execStart(kind, p, node).join(' ')}
Restart=on-failure
RestartSec=5
TimeoutStopSec=30
KillMode=mixed

# Hardening: read-only system, its own /tmp, no privilege gain; only the data directory is writable.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=${kind === 'agent' ? 'no' : 'yes'}
ReadWritePaths=${p.data}
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictNamespaces=yes

[Install]
WantedBy=multi-user.target
`;
}

export function envTemplate(kind: ServiceKind): string {
  return kind === 'agent'
    ? `# Secrets of the agent (read by systemd: EnvironmentFile). Names as in the site config's uplink section.
# BK_MQTT_USERNAME=<site id>
# BK_MQTT_PASSWORD=<the site's broker password>
`
    : `# Secrets of central (read by systemd: EnvironmentFile): an external broker's account, webhook
# secrets, a /metrics bearer token — whatever the config's *Env fields name.
# BK_BROKER_USERNAME=
# BK_BROKER_PASSWORD=
`;
}
