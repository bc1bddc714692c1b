"""Reads the crop cache written by training/heads/cut.ts (crops.u8 + index.csv + meta.json)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

LABELS = ("covered", "cigarette", "mask")


def load_crops(cache: str | Path):
    cache = Path(cache)
    meta = json.loads((cache / "meta.json").read_text())
    s = meta["cut"]
    with open(cache / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    crops = np.fromfile(cache / "crops.u8", dtype=np.uint8)
    if crops.size != len(rows) * s * s * 3:
        raise SystemExit(f"{cache}: crops.u8 holds {crops.size} bytes, index.csv lists {len(rows)} crops of {s}x{s}x3")
    return crops.reshape(len(rows), s, s, 3), rows, meta


def labels_of(rows) -> np.ndarray:
    """[N, 3] float32: 1, 0, or -1 (unknown: the loss skips it)."""
    return np.array([[float(r[k]) for k in LABELS] for r in rows], np.float32)
