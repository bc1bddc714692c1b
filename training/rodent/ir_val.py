"""Night / IR copy of the rats val split, to score the rodent model as a camera sees at night.

    .venv/bin/python training/rodent/ir_val.py [--out var/rats-ir]

Every val image becomes one grey frame as an IR camera gives it (gamma 1.3, contrast 0.8, sensor
noise sigma 6 grey levels, fixed seed), labels copied unchanged. Then:
    npm run eval -- var/rats-ir --split val --map 0=rodent --iou 0.5
"""
import argparse
import os
import shutil

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..", "..", "shared", "data", "rats")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(HERE, "..", "..", "var", "rats-ir"))
    p.add_argument("--src", default=SRC)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    for sub in ("images/val", "labels/val"):
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
    names = sorted(os.listdir(os.path.join(a.src, "images", "val")))
    for n in names:
        im = cv2.imread(os.path.join(a.src, "images", "val", n), cv2.IMREAD_COLOR)
        if im is None:
            raise SystemExit(f"ir_val: cannot read {n}")
        g = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        g = (np.power(g, 1.3) - 0.5) * 0.8 + 0.5
        g = np.clip(g * 255 + rng.normal(0, 6, g.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(a.out, "images", "val", n), cv2.merge((g, g, g)))
        lab = os.path.splitext(n)[0] + ".txt"
        src_lab = os.path.join(a.src, "labels", "val", lab)
        if os.path.exists(src_lab):
            shutil.copy(src_lab, os.path.join(a.out, "labels", "val", lab))
    print(f"ir_val: {len(names)} images -> {a.out}")


if __name__ == "__main__":
    main()
