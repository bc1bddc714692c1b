"""Trains the head-attribute classifier on the crops cut by training/heads/cut.ts.

    python training/heads/train.py var/train/heads [--holdout kitchenB] [--epochs 24] [--name NAME]
                                   [--resume] [--export models/] [--threads 2]

Network: the first four stages of YOLOX-nano's CSPDarknet (stem, dark2-4: COCO weights from
../shared/models/yolox_nano.onnx, loaded and checked by kitchen_det.onnx_init) on a 96x96 BGR 0..255
crop, then a 1x1 conv, global average pool and one linear layer with a sigmoid per attribute
(covered, cigarette, mask): about 100 k parameters. Labels of -1 (unknown) are left out of the loss.

Split by source, never by frame: photo sets by a hash of their photo group (cut.ts), smoking by its
own split, the two kitchen videos by video: `--holdout kitchenA|kitchenB` keeps one video out of
training entirely (its crops are the honest test of covered vs bare in a kitchen); `--holdout none`
trains on both (the shipped model).

Writes <project>/<name>/: last.pt (each epoch; --resume continues it), best.pt, train.log,
val_preds.npy (probabilities for every crop of the cache, for the contact sheet), summary.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from crops import LABELS, labels_of, load_crops  # noqa: E402
from kitchen_det.model import BaseConv  # noqa: E402
from kitchen_det.onnx_init import pretrained  # noqa: E402

SIZE = 96  # the crops' side: set from the cache's meta.json in main()


class HeadAttrs(nn.Module):
    """CSPDarknet stem..dark4 (stride 16, 128 channels) → 1x1 conv → GAP → linear → sigmoid."""

    def __init__(self, backbone: nn.Module, k: int = len(LABELS)):
        super().__init__()
        self.stem, self.dark2, self.dark3, self.dark4 = backbone.stem, backbone.dark2, backbone.dark3, backbone.dark4
        self.mix = BaseConv(128, 160, 1, 1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(160, k)
        self.export = False

    def forward(self, x):
        x = self.dark4(self.dark3(self.dark2(self.stem(x))))
        x = self.mix(x).mean((2, 3))
        logits = self.fc(self.drop(x))
        return torch.sigmoid(logits) if self.export else logits


def build(init_onnx: str, log) -> HeadAttrs:
    det = pretrained(init_onnx, 1, log=log)
    return HeadAttrs(det.backbone.backbone)


def to_tensor(batch_rgb: np.ndarray) -> torch.Tensor:
    """[B, S, S, 3] RGB uint8 → [B, 3, S, S] BGR float 0..255 (YOLOX's input convention)."""
    return torch.from_numpy(np.ascontiguousarray(batch_rgb[..., ::-1].transpose(0, 3, 1, 2))).float()


def centre(crops: np.ndarray, cut: int, size: int | None = None) -> np.ndarray:
    s = size or SIZE
    m = (cut - s) // 2
    return crops[:, m: m + s, m: m + s]


def augment(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One training view of a context crop: scale/shift jitter, flip, light and colour, grey, blur, noise."""
    cut = c.shape[0]
    s = SIZE * rng.uniform(0.85, 1.12)
    cx = cut / 2 + rng.uniform(-0.08, 0.08) * SIZE
    cy = cut / 2 + rng.uniform(-0.08, 0.08) * SIZE
    m = np.array([[SIZE / s, 0, SIZE / 2 - cx * SIZE / s], [0, SIZE / s, SIZE / 2 - cy * SIZE / s]], np.float32)
    v = cv2.warpAffine(c, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=(114, 114, 114))
    if rng.random() < 0.5:
        v = v[:, ::-1]
    v = v.astype(np.float32)
    v = v * rng.uniform(0.65, 1.35) + rng.uniform(-25, 25)
    if rng.random() < 0.5:
        v = v * rng.uniform(0.85, 1.15, size=3)
    if rng.random() < 0.15:  # night / IR cameras: grey
        v[:] = v.mean(2, keepdims=True)
    if rng.random() < 0.15:
        v = cv2.GaussianBlur(v, (0, 0), rng.uniform(0.5, 1.3))
    if rng.random() < 0.3:
        v = v + rng.normal(0, rng.uniform(2, 8), v.shape)
    return np.clip(v, 0, 255).astype(np.uint8)


def masked_bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    known = y >= 0
    loss = F.binary_cross_entropy_with_logits(logits, y.clamp(min=0), reduction="none", pos_weight=pos_weight)
    return (loss * known).sum() / known.sum().clamp(min=1)


def auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@torch.no_grad()
def predict(model: nn.Module, crops: np.ndarray, cut: int, bs: int = 256) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(crops), bs):
        out.append(torch.sigmoid(model(to_tensor(centre(crops[i: i + bs], cut)))).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def report(p: np.ndarray, y: np.ndarray, sets: np.ndarray, idx: np.ndarray) -> dict:
    """Per attribute and per set: n, positives, AUC, accuracy / recall / false-positive rate at 0.5."""
    res: dict = {}
    for k, name in enumerate(LABELS):
        for s in ["all", *sorted(set(sets[idx]))]:
            sel = idx if s == "all" else idx[sets[idx] == s]
            yy, pp = y[sel, k], p[sel, k]
            known = yy >= 0
            yy, pp = yy[known], pp[known]
            if len(yy) == 0:
                continue
            hit = pp >= 0.5
            pos = yy == 1
            res[f"{name}/{s}"] = dict(n=int(len(yy)), pos=int(pos.sum()), auc=round(auc(pp, yy), 4),
                                      acc=round(float((hit == pos).mean()), 4),
                                      recall=round(float(hit[pos].mean()), 4) if pos.any() else None,
                                      fpr=round(float(hit[~pos].mean()), 4) if (~pos).any() else None)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache", nargs="?", default=str(ROOT / "var/train/heads"))
    ap.add_argument("--holdout", default="kitchenB", help="kitchen video kept out of training (kitchenA, kitchenB), "
                    "time (the last 40 %% of each video's frames), or none")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--name")
    ap.add_argument("--project", default=str(ROOT / "training/runs"))
    ap.add_argument("--init", default=str(ROOT.parent / "shared/models/yolox_nano.onnx"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export", help="after training, export best.pt here (head_attrs.onnx) and update its manifest")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    name = a.name or f"head_attrs_{a.holdout}"
    run = Path(a.project) / name
    run.mkdir(parents=True, exist_ok=True)
    logf = open(run / "train.log", "a")

    def log(*xs):
        line = " ".join(str(x) for x in xs)
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    crops, rows, meta = load_crops(a.cache)
    cut = meta["cut"]
    global SIZE
    SIZE = int(meta["size"])  # the network is fully convolutional up to its pooling: any side the crops have
    log(f"crops of {SIZE} px (cut {cut} with context)")
    y = labels_of(rows)
    reviewed = apply_review(rows, y, HERE / "review.csv")
    split = np.array([r["split"] for r in rows])
    sets = np.array([r["set"] for r in rows])
    if a.holdout == "time":
        # Weaker than by video (same kitchens, same people): the last 40 % of each video's frames are
        # val, the 5 % before them are dropped so no near-copy of a val frame is trained on.
        pos = time_position(rows)
        is_val = (split == "val") | (pos >= 0.6)
        dropped = (split != "val") & (pos >= 0.55) & (pos < 0.6)
    else:
        held = {"none": set(), "kitchenA": {"kitchenA"}, "kitchenB": {"kitchenB"}}.get(a.holdout)
        if held is None:
            sys.exit(f"--holdout: expected kitchenA, kitchenB, time or none, got {a.holdout!r}")
        is_val = (split == "val") | np.isin(split, list(held))
        dropped = np.zeros(len(rows), bool)
    tr, va = np.where(~is_val & ~dropped)[0], np.where(is_val)[0]
    log(f"{name}: {len(rows)} crops, train {len(tr)}, val {len(va)} (holdout {a.holdout}); covered from review.csv on {reviewed} crops")
    for k, n in enumerate(LABELS):
        log(f"  {n}: train pos {int((y[tr, k] == 1).sum())} neg {int((y[tr, k] == 0).sum())}; val pos {int((y[va, k] == 1).sum())} neg {int((y[va, k] == 0).sum())}")

    model = build(a.init, log)
    log(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    start, best, it_per_epoch = 0, -1.0, math.ceil(len(tr) / a.batch)
    total = a.epochs * it_per_epoch
    if a.resume or a.export_only:
        ck = torch.load(run / ("best.pt" if a.export_only else "last.pt"), weights_only=False)
        model.load_state_dict(ck["model"])
        if not a.export_only:
            opt.load_state_dict(ck["opt"])
            start, best = ck["epoch"], ck["best"]
            log(f"resumed {run / 'last.pt'} at epoch {start}")
    # Rare positives (cigarette, mask) weigh more, so the loss does not settle on "never".
    pos = np.array([(y[tr, k] == 1).sum() for k in range(len(LABELS))], np.float32)
    neg = np.array([(y[tr, k] == 0).sum() for k in range(len(LABELS))], np.float32)
    pos_weight = torch.tensor(np.clip(neg / np.maximum(pos, 1), 1, 4), dtype=torch.float32)
    rng = np.random.default_rng(a.seed + start)
    t0 = time.time()
    for epoch in range(start, 0 if a.export_only else a.epochs):
        model.train()
        order = rng.permutation(tr)
        tot, seen = 0.0, 0
        for b in range(it_per_epoch):
            it = epoch * it_per_epoch + b
            for g in opt.param_groups:  # warm-up 1 epoch, then cosine
                g["lr"] = a.lr * min(1.0, (it + 1) / it_per_epoch) * 0.5 * (1 + math.cos(math.pi * it / total))
            sel = order[b * a.batch: (b + 1) * a.batch]
            x = to_tensor(np.stack([augment(crops[i], rng) for i in sel]))
            loss = masked_bce(model(x), torch.from_numpy(y[sel]), pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(sel)
            seen += len(sel)
        p = predict(model, crops[va], cut)
        r = report(_full(p, va, len(rows)), y, sets, va)
        score = np.nanmean([r[f"{n}/all"]["auc"] for n in LABELS if f"{n}/all" in r])
        log(f"epoch {epoch + 1}/{a.epochs} loss {tot / max(seen, 1):.4f} {seen / max(time.time() - t0, 1e-6):.0f} img/s "
            + " ".join(f"{n} auc {r[f'{n}/all']['auc']:.3f} acc {r[f'{n}/all']['acc']:.3f}" for n in LABELS if f"{n}/all" in r)
            + f" ({time.time() - t0:.0f} s)")
        t0 = time.time()
        if score > best:
            best = score
            torch.save({"model": model.state_dict(), "epoch": epoch + 1, "score": score}, run / "best.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1, "best": best}, run / "last.pt")

    ck = torch.load(run / "best.pt", weights_only=False)
    model.load_state_dict(ck["model"])
    p_all = predict(model, crops, cut)
    np.save(run / "val_preds.npy", p_all)
    r = report(p_all, y, sets, va)
    for k, v in r.items():
        log(f"  val {k}: {v}")
    (run / "summary.json").write_text(json.dumps(dict(name=name, holdout=a.holdout, best_epoch=ck["epoch"], val=r,
                                                      train=len(tr), valn=len(va)), indent=1))
    if a.export:
        from export_onnx import export
        export(model, Path(a.export), crops[va][:64], cut, SIZE, log)


REVIEWED_SETS = ("masks", "smoking", "coco")


def time_position(rows) -> np.ndarray:
    """Kitchen crops: the frame's rank within its video, 0..1 (file names kitchenX_<frame>.jpg); others -1."""
    import re
    frames: dict[str, list[int]] = {}
    num = []
    for r in rows:
        m = re.search(r"_(\d+)\.\w+$", r["image"]) if r["set"] == "kitchen" else None
        n = int(m.group(1)) if m else -1
        num.append(n)
        if m:
            frames.setdefault(r["group"], []).append(n)
    ranks = {g: {f: i / max(len(set(v)) - 1, 1) for i, f in enumerate(sorted(set(v)))} for g, v in frames.items()}
    return np.array([ranks[r["group"]][n] if n >= 0 else -1.0 for r, n in zip(rows, num)])


def apply_review(rows, y: np.ndarray, review_file: Path) -> int:
    """Face crops of the reviewed photo sets are bare unless review.csv lists them (cap, hat ... or unsure)."""
    import csv as _csv
    with open(review_file, newline="") as f:
        listed = {(r["image"], r["source"], r["x1"], r["y1"]): float(r["covered"])
                  for r in _csv.DictReader(line for line in f if not line.startswith("#"))}
    n, used = 0, 0
    for i, r in enumerate(rows):
        if r["set"] in REVIEWED_SETS and r["source"] == "face":
            key = (r["image"], r["source"], r["x1"], r["y1"])
            y[i, 0] = listed.get(key, 0.0)
            used += key in listed
            n += 1
    if used != len(listed):  # a recipe change drops or moves some regions: look at the new ones
        print(f"warning: {review_file}: {len(listed) - used} of {len(listed)} listed crops are not in the cache", file=sys.stderr)
    return n


def _full(p_va: np.ndarray, va: np.ndarray, n: int) -> np.ndarray:
    full = np.zeros((n, p_va.shape[1]), np.float32)
    full[va] = p_va
    return full


if __name__ == "__main__":
    main()
