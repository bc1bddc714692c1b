"""Decoding, NMS, AP50 and the precision/recall operating point, in numpy (no torchvision).

Decoding is the agent's `yolox` decoder: cx = (x + gx) * s, cy = (y + gy) * s, w = exp(w) * s,
h = exp(h) * s (grid offset 0), score = objectness * best class score; then greedy per-class NMS.
A detection is a true positive when its IoU with a not-yet-matched ground-truth box of the same
class is ≥ 0.5 (greedy, best score first). AP50 = area under the all-point-interpolated PR curve.
"""
from __future__ import annotations

import numpy as np
import torch

from .data import letterbox, imread
from .model import STRIDES


def grid_table(h: int, w: int):
    gx, gy, st = [], [], []
    for s in STRIDES:
        yy, xx = np.mgrid[0:h // s, 0:w // s]
        gx.append(xx.ravel()); gy.append(yy.ravel()); st.append(np.full(xx.size, s))
    return np.concatenate(gx).astype(np.float32), np.concatenate(gy).astype(np.float32), np.concatenate(st).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    order = scores.argsort()[::-1]
    keep = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0]); yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2]); yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_thr]
    return np.array(keep, dtype=np.int64)


def decode(out: np.ndarray, h: int, w: int, min_score: float = 0.01, nms_iou: float = 0.45, max_det: int = 100):
    """out [N, 5+C] (export layout) → (boxes [K, 4] x1y1x2y2 input px, scores [K], classes [K])."""
    gx, gy, st = grid_table(h, w)
    cls = out[:, 5:].argmax(1)
    score = out[:, 4] * out[np.arange(len(out)), 5 + cls]
    m = score >= min_score
    cx = (out[m, 0] + gx[m]) * st[m]
    cy = (out[m, 1] + gy[m]) * st[m]
    bw = np.exp(np.minimum(out[m, 2], 20)) * st[m]
    bh = np.exp(np.minimum(out[m, 3], 20)) * st[m]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    score, cls = score[m], cls[m]
    keep_all = []
    for c in np.unique(cls):
        idx = np.nonzero(cls == c)[0]
        keep_all.append(idx[nms(boxes[idx], score[idx], nms_iou)])
    keep = np.concatenate(keep_all) if keep_all else np.zeros(0, np.int64)
    keep = keep[score[keep].argsort()[::-1]][:max_det]
    return boxes[keep], score[keep], cls[keep]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]); ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (aa[:, None] + ab[None] - inter + 1e-9)


def match(dets, gts, iou_thr=0.5):
    """dets: per image (boxes, scores, classes); gts: per image [K, 5] (class, x1..y2) in the same units.
    Returns (scores [D], tp [D] bool, num_gt)."""
    all_s, all_tp, ngt = [], [], 0
    for (b, s, c), g in zip(dets, gts):
        ngt += len(g)
        tp = np.zeros(len(s), bool)
        if len(g) and len(s):
            ious = iou_matrix(b, g[:, 1:5])
            used = np.zeros(len(g), bool)
            for k in np.argsort(-s):
                cand = np.where((~used) & (g[:, 0] == c[k]), ious[k], 0.0)
                j = int(cand.argmax())
                if cand[j] >= iou_thr:
                    used[j] = True
                    tp[k] = True
        all_s.append(s); all_tp.append(tp)
    return np.concatenate(all_s) if all_s else np.zeros(0), np.concatenate(all_tp) if all_tp else np.zeros(0, bool), ngt


def ap_from(scores, tp, ngt) -> float:
    if ngt == 0:
        return float("nan")
    o = np.argsort(-scores)
    tpc = np.cumsum(tp[o]); fpc = np.cumsum(~tp[o])
    rec = tpc / ngt
    prec = tpc / np.maximum(tpc + fpc, 1)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[1.0], prec, [0.0]])
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(((mrec[i + 1] - mrec[i]) * mpre[i + 1]).sum())


def pr_at(scores, tp, ngt, thr: float):
    m = scores >= thr
    n_tp = int(tp[m].sum()); n_det = int(m.sum())
    return (n_tp / n_det if n_det else 1.0), (n_tp / ngt if ngt else 0.0), n_tp, n_det


# The operating point a shipped detector must reach on its val split (issue 15: rodents).
TARGET_P, TARGET_R = 0.90, 0.88
TARGET_TEXT = f"P >= {TARGET_P:.2f} with R >= {TARGET_R:.2f}"


def choose_threshold(scores, tp, ngt, min_p=TARGET_P, min_r=TARGET_R):
    """Threshold (0.05..0.95 step 0.01) meeting P ≥ min_p and R ≥ min_r with the largest margin
    min(P - min_p, R - min_r) (robust to small evaluation differences); if none does, the one with the
    smallest shortfall on the worse of the two."""
    best, best_key, feasible = None, None, False
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        p, r, _, _ = pr_at(scores, tp, ngt, t)
        ok = p >= min_p and r >= min_r
        key = (ok, min(p - min_p, r - min_r))
        if best_key is None or key > best_key:
            best, best_key, feasible = float(t), key, ok
    p, r, n_tp, n_det = pr_at(scores, tp, ngt, best)
    return dict(threshold=best, precision=p, recall=r, tp=n_tp, detections=n_det, gt=ngt, meets_target=feasible)


@torch.no_grad()
def evaluate(model, samples, imgsz: int, nms_iou: float = 0.45, batch: int = 16, log=None):
    """Run `model` (export-mode forward) on val samples with deployment letterbox; AP50 and operating point."""
    was_export, was_training = model.export, model.training
    model.export = True
    model.eval()
    dets, gts = [], []
    for k in range(0, len(samples), batch):
        chunk = samples[k:k + batch]
        ims, rs, sizes = [], [], []
        for s in chunk:
            im = imread(s.image)
            lb, r = letterbox(im, imgsz)
            ims.append(lb.transpose(2, 0, 1)); rs.append(r); sizes.append(im.shape[:2])
        out = model(torch.from_numpy(np.stack(ims).astype(np.float32))).numpy()
        for o, r, (h, w), s in zip(out, rs, sizes, chunk):
            b, sc, c = decode(o, imgsz, imgsz, 0.01, nms_iou)
            dets.append((b / r, sc, c))
            g = s.boxes.copy()
            g[:, [1, 3]] *= w; g[:, [2, 4]] *= h
            gts.append(g)
    model.export = was_export
    model.train(was_training)
    scores, tp, ngt = match(dets, gts)
    res = dict(ap50=ap_from(scores, tp, ngt), images=len(samples))
    res.update(choose_threshold(scores, tp, ngt))
    return res
