#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine with Node 20: system packages, npm packages,
# model files (from the mirror in BK_MODEL_MIRROR, default ../shared/models). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  ffmpeg                                   # camera decode, simulated cameras
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gir1.2-gst-rtsp-server-1.0 python3-gi    # the RTSP server used by simulated cameras
  mosquitto mosquitto-clients              # external-broker mode and its tests
  postgresql                               # central's PostgreSQL store: tests start private clusters (initdb, pg_ctl)
  espeak-ng sox                            # voice warnings (Mandarin TTS) and audio checks
  fonts-wqy-microhei                       # Chinese text in annotated snapshots
  chromium                                 # dashboard browser tests
  python3-venv                             # training pipeline's virtual environment
  systemd                                  # systemd-analyze verify of the service units (tests); systemd-notify
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A packaged mosquitto starts a system broker on :1883; the project runs its own brokers.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true; systemctl disable mosquitto >/dev/null 2>&1 || true
fi

# npm packages: reinstall when package-lock.json changed since the last install.
stamp=node_modules/.bk-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: installing npm packages (better-sqlite3 compiles from source, ~2 min)" >&2
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# Model files: verified by sha256 against models/*.model.yaml.
npx tsx scripts/install-models.ts --quiet
