#!/usr/bin/env bash
# One command from data to a shipped model:
#   bash training/train.sh <rats|smoking|path> [--epochs N] [--imgsz 416] [--name NAME] [--resume]
#                          [--max-images N] [--export models/] [--label LABEL] ...   (--help for all)
#   bash training/train.sh heads [--holdout kitchenA|kitchenB|none] [--epochs 24] [--size 96] [--max-images N] [--cache DIR]
#                                [--resume] [--export models/]
#        the head-attribute classifier: cuts head crops with the project's detectors (cached in
#        var/train/heads), then trains on them (training/heads/train.py --help)
# Makes/reuses the Python venv (training/setup.sh), then runs training/train.py with it.
# Long runs: nohup nice -n 10 bash training/train.sh rats --export models/ > train-rats.log 2>&1 &
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAIN_VENV:-$ROOT/.venv}"
bash "$ROOT/training/setup.sh" >&2
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# One intra-op pool (torch.set_num_threads in train.py); keep OpenMP/MKL from adding their own.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"
if [[ "${1:-}" == heads ]]; then
  shift
  # Options of the cut (the rest go to train.py): --size PX, crops of another side than the shipped
  # manifest's input (their own cache); --max-images N per data set; --cache DIR.
  size=""; max=""; cache=""; args=()
  while (($#)); do
    case "$1" in
      --size) size="$2"; shift 2 ;;
      --max-images) max="$2"; shift 2 ;;
      --cache) cache="$2"; shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  cache="${cache:-$ROOT/var/train/heads${size:+-$size}}"
  (cd "$ROOT" && node_modules/.bin/tsx training/heads/cut.ts --out "$cache" ${size:+--size "$size"} ${max:+--max-images "$max"})
  exec "$VENV/bin/python" "$ROOT/training/heads/train.py" "$cache" "${args[@]}"
fi
exec "$VENV/bin/python" "$ROOT/training/train.py" "$@"
