"""Contact sheet of head crops with their labels, to look at before trusting them.

    python training/heads/sheet.py var/train/heads --out sheet.png [--set kitchen] [--where covered=0]
                                   [--pred preds.npy] [--cols 16] [--max 256] [--sort covered]

Each tile: the crop (training context removed), a strip on top: green = covered, red = bare, grey =
unknown; a yellow corner = cigarette 1, a blue corner = mask 1; text = set/source, and with --pred the
model's probabilities (covered, cigarette, mask).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crops import load_crops  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append")
    ap.add_argument("--split", action="append")
    ap.add_argument("--where", action="append", default=[], help="column=value, e.g. covered=0")
    ap.add_argument("--pred", help="probabilities [N, 3] (.npy) to print on each tile")
    ap.add_argument("--sort", help="sort by this prediction column (0, 1, 2), highest first")
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--max", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    crops, rows, meta = load_crops(a.cache)
    pred = np.load(a.pred) if a.pred else None
    idx = [i for i, r in enumerate(rows)
           if (not a.set or r["set"] in a.set) and (not a.split or r["split"] in a.split)
           and all(str(r[k]) == v for k, v in (w.split("=", 1) for w in a.where))]
    if pred is not None and a.sort is not None:
        idx.sort(key=lambda i: -pred[i, int(a.sort)])
    else:
        rng = np.random.default_rng(a.seed)
        rng.shuffle(idx)
    idx = idx[: a.max]
    if not idx:
        sys.exit("no crops match")
    t = 112
    m = (meta["cut"] - meta["size"]) // 2
    rows_n = (len(idx) + a.cols - 1) // a.cols
    sheet = np.full((rows_n * (t + 14), a.cols * t, 3), 40, np.uint8)
    for k, i in enumerate(idx):
        r = rows[i]
        tile = crops[i][m: m + meta["size"], m: m + meta["size"]]
        tile = cv2.resize(cv2.cvtColor(tile, cv2.COLOR_RGB2BGR), (t, t))
        c = {1: (0, 200, 0), 0: (0, 0, 230)}.get(int(r["covered"]), (128, 128, 128))
        cv2.rectangle(tile, (0, 0), (t - 1, 4), c, -1)
        if int(r["cigarette"]) == 1:
            cv2.rectangle(tile, (t - 14, 5), (t - 1, 18), (0, 230, 230), -1)
        if int(r["mask"]) == 1:
            cv2.rectangle(tile, (0, 5), (13, 18), (230, 120, 0), -1)
        y, x = (k // a.cols) * (t + 14), (k % a.cols) * t
        sheet[y: y + t, x: x + t] = tile
        text = f'{r["set"][:4]}/{r["source"][0]} {i}'
        if pred is not None:
            text = " ".join(f"{p:.2f}" for p in pred[i])
        cv2.putText(sheet, text, (x + 2, y + t + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (230, 230, 230), 1, cv2.LINE_AA)
    cv2.imwrite(a.out, sheet)
    print(f"{a.out}: {len(idx)} crops")


if __name__ == "__main__":
    main()
