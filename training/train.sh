#!/usr/bin/env bash
# One command from data to a shipped model:
#   bash training/train.sh <rats|smoking|path> [--epochs N] [--imgsz 416] [--name NAME] [--resume]
#                          [--max-images N] [--export models/] [--label LABEL] ...   (--help for all)
# Makes/reuses the Python venv (training/setup.sh), then runs training/train.py with it.
# Long runs: nohup nice -n 10 bash training/train.sh rats --export models/ > train-rats.log 2>&1 &
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAIN_VENV:-$ROOT/.venv}"
bash "$ROOT/training/setup.sh" >&2
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# One intra-op pool (torch.set_num_threads in train.py); keep OpenMP/MKL from adding their own.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"
exec "$VENV/bin/python" "$ROOT/training/train.py" "$@"
