#!/usr/bin/env bash
# Creates the Python venv for training (repo-root .venv/, git-ignored) and installs the pinned
# packages from training/requirements.txt out of the machine's local wheel store (no internet).
# Idempotent: a stamp holding the requirements' sha256 skips the install when nothing changed.
# Usage: bash training/setup.sh            (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRAIN_VENV:-$ROOT/.venv}"
REQ="$ROOT/training/requirements.txt"
PY="${PYTHON:-python3}"
STAMP="$VENV/.kitchen-train-requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  if "$VENV/bin/python" -c 'import torch, onnx, onnxruntime, cv2, numpy' 2>/dev/null; then
    echo "training venv ready: $VENV"
    exit 0
  fi
fi

if ! command -v "$PY" >/dev/null; then
  echo "setup.sh: $PY not found (set PYTHON=...)" >&2; exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
# The machine's pip config lists the local wheel store as extra indexes (file://) plus find-links;
# the default index (the public one) is unreachable here, so make the first local index the main one
# instead of letting pip retry the network for every package.
PIP_ARGS=(--disable-pip-version-check --retries 0 --timeout 5)
if [[ -z "${PIP_INDEX_URL:-}" ]]; then
  extra="$("$VENV/bin/python" -m pip config get global.extra-index-url 2>/dev/null || true)"
  first="${extra%%[[:space:]]*}"
  if [[ "$first" == file://* ]]; then PIP_ARGS+=(--index-url "$first"); fi
fi
echo "installing $(grep -cvE '^\s*(#|$)' "$REQ") pinned packages from the local wheel store"
"$VENV/bin/python" -m pip install --quiet "${PIP_ARGS[@]}" -r "$REQ" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$VENV/bin/python" -c 'import torch, onnx, onnxruntime, cv2, numpy; print("torch", torch.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "cv2", cv2.__version__, "numpy", numpy.__version__)'
echo "$want" > "$STAMP"
echo "training venv ready: $VENV"
