/**
 * systemd readiness and watchdog for a service started as `Type=notify` with `WatchdogSec=`: Node has
 * no sd_notify, so the messages go through `systemd-notify` (the unit sets `NotifyAccess=all`, since
 * that helper is a child process). Outside systemd (no NOTIFY_SOCKET) everything here does nothing.
 * The watchdog is fed from the event loop: a loop that hangs stops feeding it and systemd restarts
 * the service.
 */
import { execFile } from 'node:child_process';

function notify(...msgs: string[]): void {
  if (!process.env.NOTIFY_SOCKET) return;
  execFile('systemd-notify', msgs, { timeout: 5000 }, () => {
    /* best effort: a missed ping is caught by the next one */
  });
}

/** Tell systemd the service is up, and keep its watchdog fed. Returns a stop function. */
export function serviceReady(status: string): () => void {
  notify('--ready', `--status=${status}`);
  const usec = Number(process.env.WATCHDOG_USEC);
  if (!process.env.NOTIFY_SOCKET || !(usec > 0)) return () => {};
  const t = setInterval(() => notify('WATCHDOG=1'), Math.max(1000, usec / 1000 / 3));
  t.unref();
  return () => {
    clearInterval(t);
    notify('STOPPING=1');
  };
}
