"""YOLO-format detection data: images/{train,val}/*.jpg + labels/{train,val}/*.txt
(one `class cx cy w h` line per box, normalised 0..1). Images are read BGR (cv2), as the model wants.

Deployment preprocessing (`letterbox`) is the agent's: scale r = min(S/w, S/h), new size int(w*r),
bilinear resize, placed at the top-left, pad 114. Training augmentation: mosaic (4 images, smaller
objects, as a ceiling camera sees them), random scale and placement, horizontal flip, HSV jitter,
greyscale (night / IR frames), mild blur and noise. Pure numpy + cv2 (no torchvision here).
"""
from __future__ import annotations

import glob
import os
import random
from dataclasses import dataclass

import cv2
import numpy as np

IMG_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PAD = 114


@dataclass
class Sample:
    image: str
    boxes: np.ndarray  # [K, 5] class, x1, y1, x2, y2 in normalised 0..1 coordinates


def read_split(root: str, split: str, class_ids=None, max_images: int | None = None) -> list[Sample]:
    img_dir = os.path.join(root, "images", split)
    lbl_dir = os.path.join(root, "labels", split)
    if not os.path.isdir(img_dir):
        raise FileNotFoundError(f"{img_dir}: missing (expected images/{{train,val}} and labels/{{train,val}} under {root})")
    names = sorted(f for f in os.listdir(img_dir) if f.lower().endswith(IMG_EXTS))
    if max_images:
        names = names[:max_images]
    out = []
    for f in names:
        lf = os.path.join(lbl_dir, os.path.splitext(f)[0] + ".txt")
        rows = []
        if os.path.exists(lf):
            for line in open(lf).read().split("\n"):
                v = line.split()
                if len(v) < 5:
                    continue
                c = int(float(v[0]))
                if class_ids is not None and c not in class_ids:
                    continue
                nums = [float(t) for t in v[1:]]
                if len(nums) == 4:
                    cx, cy, w, h = nums
                    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
                else:  # polygon (segment export): its bounding box
                    xs, ys = nums[0::2], nums[1::2]
                    x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
                cls = class_ids.index(c) if class_ids is not None else c
                rows.append([cls, max(0.0, x1), max(0.0, y1), min(1.0, x2), min(1.0, y2)])
        out.append(Sample(os.path.join(img_dir, f), np.array(rows, np.float32).reshape(-1, 5)))
    return out


def read_folder(folder: str, max_images: int | None = None) -> list[Sample]:
    """Every image of a folder (or of a glob such as `kitchen/images/kitchenA_*`) as a background
    sample (no boxes): hard negatives."""
    if any(c in folder for c in "*?["):
        paths = sorted(p for p in glob.glob(folder) if p.lower().endswith(IMG_EXTS))
        if not paths:
            raise FileNotFoundError(f"{folder}: the pattern matches no image (--negatives)")
    elif os.path.isdir(folder):
        paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMG_EXTS))
    else:
        raise FileNotFoundError(f"{folder}: not a folder of images (--negatives)")
    return [Sample(os.path.abspath(p), np.zeros((0, 5), np.float32)) for p in paths[:max_images]]


def imread(path: str) -> np.ndarray:
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is None:
        raise IOError(f"cannot read image {path}")
    return im


def letterbox(im: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Deployment preprocessing: top-left letterbox, pad 114. Returns (uint8 HxWx3 image, r)."""
    h, w = im.shape[:2]
    r = min(size / w, size / h)
    nw, nh = min(size, max(1, int(w * r + 1e-6))), min(size, max(1, int(h * r + 1e-6)))
    out = np.full((size, size, 3), PAD, np.uint8)
    out[:nh, :nw] = cv2.resize(im, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, r


def _abs_boxes(s: Sample, w: int, h: int) -> np.ndarray:
    b = s.boxes.copy()
    b[:, [1, 3]] *= w
    b[:, [2, 4]] *= h
    return b


def _place(canvas: np.ndarray, im: np.ndarray, boxes: np.ndarray, scale: float, ox: int, oy: int,
           clip: tuple[int, int, int, int]) -> np.ndarray:
    """Resize `im` by `scale`, paste its top-left at (ox, oy) clipped to `clip` = x1, y1, x2, y2.
    Returns its boxes moved, clipped, and filtered (kept if ≥ 2 px and ≥ 25 % of their area survives)."""
    h, w = im.shape[:2]
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    im = cv2.resize(im, (nw, nh), interpolation=cv2.INTER_LINEAR if scale > 0.6 else cv2.INTER_AREA)
    cx1, cy1, cx2, cy2 = clip
    x1, y1 = max(ox, cx1), max(oy, cy1)
    x2, y2 = min(ox + nw, cx2), min(oy + nh, cy2)
    if x2 > x1 and y2 > y1:
        canvas[y1:y2, x1:x2] = im[y1 - oy:y2 - oy, x1 - ox:x2 - ox]
    if len(boxes) == 0:
        return boxes.reshape(0, 5)
    b = boxes.copy()
    b[:, 1:] *= scale
    b[:, [1, 3]] += ox
    b[:, [2, 4]] += oy
    area0 = (b[:, 3] - b[:, 1]) * (b[:, 4] - b[:, 2])
    b[:, [1, 3]] = b[:, [1, 3]].clip(x1, x2)
    b[:, [2, 4]] = b[:, [2, 4]].clip(y1, y2)
    bw, bh = b[:, 3] - b[:, 1], b[:, 4] - b[:, 2]
    keep = (bw >= 2) & (bh >= 2) & (bw * bh >= 0.25 * np.maximum(area0, 1e-6))
    return b[keep]


def hsv_jitter(im: np.ndarray, rng: random.Random, hg=0.015, sg=0.6, vg=0.35) -> np.ndarray:
    r = np.array([rng.uniform(-1, 1) * hg + 1, rng.uniform(-1, 1) * sg + 1, rng.uniform(-1, 1) * vg + 1])
    hue, sat, val = cv2.split(cv2.cvtColor(im, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=r.dtype)
    lut_h = ((x * r[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def ir_like(im: np.ndarray, rng: random.Random) -> np.ndarray:
    """Greyscale as a night / IR camera frame: one channel, random gamma and contrast."""
    g = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    g = np.power(g, rng.uniform(0.6, 1.4))
    g = (g - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.5:  # IR sensors at night are noisy
        g = g + np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(0.01, 0.05), g.shape)
    g = (np.clip(g, 0, 1) * 255).astype(np.uint8)
    return cv2.merge((g, g, g))


def motion_blur(im: np.ndarray, rng: random.Random) -> np.ndarray:
    """A running animal at a night shutter speed: a line kernel of 3-9 px at a random angle."""
    k = rng.choice((3, 5, 7, 9))
    kern = np.zeros((k, k), np.float32)
    kern[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kern = cv2.warpAffine(kern, rot, (k, k))
    return cv2.filter2D(im, -1, kern / max(kern.sum(), 1e-6))


class TrainSet:
    """Random-access augmented training samples at `size` x `size` (BGR uint8 + boxes [K, 5] px)."""

    def __init__(self, samples: list[Sample], size: int, seed: int = 0, mosaic: float = 0.5,
                 grey: float = 0.2, scale=(0.5, 1.3), aug: bool = True):
        self.samples, self.size, self.mosaic, self.grey, self.scale, self.aug = samples, size, mosaic, grey, scale, aug
        self.rng = random.Random(seed)

    def __len__(self):
        return len(self.samples)

    def _load(self, i: int):
        s = self.samples[i]
        im = imread(s.image)
        return im, _abs_boxes(s, im.shape[1], im.shape[0])

    def _single(self, i: int):
        S, rng = self.size, self.rng
        im, b = self._load(i)
        h, w = im.shape[:2]
        r = S / max(h, w) * rng.uniform(*self.scale)
        nw, nh = w * r, h * r
        # Placement: at the top-left as deployed half of the time, else anywhere (crop if larger).
        if rng.random() < 0.5:
            ox, oy = 0, 0
        else:
            ox = int(rng.uniform(min(0, S - nw), max(0, S - nw)))
            oy = int(rng.uniform(min(0, S - nh), max(0, S - nh)))
        canvas = np.full((S, S, 3), PAD, np.uint8)
        return canvas, _place(canvas, im, b, r, ox, oy, (0, 0, S, S))

    def _mosaic(self, i: int):
        S, rng = self.size, self.rng
        idx = [i] + [rng.randrange(len(self.samples)) for _ in range(3)]
        xc, yc = int(rng.uniform(0.3, 0.7) * S), int(rng.uniform(0.3, 0.7) * S)
        canvas = np.full((S, S, 3), PAD, np.uint8)
        out = []
        for k, j in enumerate(idx):
            im, b = self._load(j)
            h, w = im.shape[:2]
            r = S / max(h, w) * rng.uniform(0.35, 0.8)
            nw, nh = int(w * r), int(h * r)
            if k == 0:
                ox, oy, clip = xc - nw, yc - nh, (0, 0, xc, yc)
            elif k == 1:
                ox, oy, clip = xc, yc - nh, (xc, 0, S, yc)
            elif k == 2:
                ox, oy, clip = xc - nw, yc, (0, yc, xc, S)
            else:
                ox, oy, clip = xc, yc, (xc, yc, S, S)
            out.append(_place(canvas, im, b, r, ox, oy, clip))
        return canvas, np.concatenate(out, 0)

    def __getitem__(self, i: int):
        rng = self.rng
        if not self.aug:
            im, b = self._load(i)
            lb, r = letterbox(im, self.size)
            b[:, 1:] *= r
            return lb, b
        im, b = self._mosaic(i) if rng.random() < self.mosaic else self._single(i)
        if rng.random() < 0.5:
            im = im[:, ::-1].copy()
            if len(b):
                x1 = self.size - b[:, 3]
                x2 = self.size - b[:, 1]
                b[:, 1], b[:, 3] = x1, x2
        if rng.random() < self.grey:
            im = ir_like(im, rng)
        else:
            im = hsv_jitter(im, rng)
        if rng.random() < 0.1:
            im = cv2.GaussianBlur(im, (3, 3), 0)
        elif rng.random() < 0.1:
            im = motion_blur(im, rng)
        if rng.random() < 0.1:
            noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(2, 8), im.shape)
            im = np.clip(im.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        return im, b


def collate(items):
    """→ images float32 [B, 3, S, S] BGR 0..255 and a list of [K, 5] box arrays (class, x1, y1, x2, y2 px)."""
    ims = np.stack([np.ascontiguousarray(im.transpose(2, 0, 1)) for im, _ in items]).astype(np.float32)
    return ims, [b for _, b in items]
