"""Export a trained model to ONNX (opset 17, yolox_nano's I/O layout), check it against torch with
onnxruntime, measure it on val and on one CPU thread, and write the manifest and the model card."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time

import numpy as np
import torch

from .data import imread, letterbox
from .evaluate import TARGET_TEXT, ap_from, choose_threshold, decode, match

NMS_IOU = 0.45
NMS_CHOICES = (0.45, 0.5, 0.6)
AGENT_EVAL_FLOOR = 0.05  # `npm run eval` ranks detections down to this score for its AP (--floor)  # the manifest gets the one with the best val AP50 (ties: the lowest)


def export_onnx(model, imgsz: int, path: str) -> None:
    model.export = True
    model.eval()
    dummy = torch.zeros(1, 3, imgsz, imgsz)
    torch.onnx.export(model, (dummy,), path, opset_version=17, input_names=["images"], output_names=["output"],
                      do_constant_folding=True, dynamo=False)
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)


def session(path: str, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def torch_vs_ort(model, path: str, imgsz: int, real_image: str | None = None) -> float:
    sess = session(path, 2)
    xs = [np.random.default_rng(0).uniform(0, 255, (1, 3, imgsz, imgsz)).astype(np.float32)]
    if real_image:
        lb, _ = letterbox(imread(real_image), imgsz)
        xs.append(lb.transpose(2, 0, 1)[None].astype(np.float32))
    model.export = True
    model.eval()
    diff = 0.0
    with torch.no_grad():
        for x in xs:
            ref = model(torch.from_numpy(x)).numpy()
            got = sess.run(None, {"images": x})[0]
            if got.shape != ref.shape:
                raise RuntimeError(f"onnxruntime output {got.shape} vs torch {ref.shape}")
            diff = max(diff, float(np.abs(got - ref).max()))
    return diff


def bench(path: str, imgsz: int, threads: int, runs: int) -> float:
    """Median ms of one inference (batch 1) with onnxruntime on `threads` intra-op threads."""
    sess = session(path, threads)
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, imgsz, imgsz)).astype(np.float32)
    for _ in range(max(3, runs // 10)):
        sess.run(None, {"images": x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {"images": x})
        t.append((time.perf_counter() - t0) * 1000)
    return float(np.median(t))


def eval_onnx(path: str, samples, imgsz: int, nms_choices=NMS_CHOICES):
    """Val figures of the exported file itself (onnxruntime, deployment letterbox + decoder + NMS), for
    each NMS IoU in `nms_choices`; returns the best (by AP50) with the others under "by_nms"."""
    sess = session(path, 2)
    outs, rs, gts = [], [], []
    for s in samples:
        im = imread(s.image)
        lb, r = letterbox(im, imgsz)
        outs.append(sess.run(None, {"images": lb.transpose(2, 0, 1)[None].astype(np.float32)})[0][0])
        rs.append(r)
        g = s.boxes.copy()
        h, w = im.shape[:2]
        g[:, [1, 3]] *= w; g[:, [2, 4]] *= h
        gts.append(g)
    results = []
    for nms_iou in nms_choices:
        dets = []
        for out, r in zip(outs, rs):
            b, sc, c = decode(out, imgsz, imgsz, 0.01, nms_iou)
            dets.append((b / r, sc, c))
        scores, tp, ngt = match(dets, gts)
        keep = scores >= AGENT_EVAL_FLOOR
        res = dict(ap50=ap_from(scores, tp, ngt), ap50_agent_floor=ap_from(scores[keep], tp[keep], ngt),
                   images=len(samples), nms_iou=nms_iou)
        res.update(choose_threshold(scores, tp, ngt))
        results.append(res)
    best = max(results, key=lambda x: (x["meets_target"], round(x["ap50"], 4), -x["nms_iou"]))
    best["by_nms"] = [{k: x[k] for k in ("nms_iou", "ap50", "threshold", "precision", "recall")} for x in results]
    return best


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def write_manifest(path: str, *, name: str, onnx_file: str, digest: str, imgsz: int, class_name: str,
                   label: str, threshold: float, description: str, source: str, license: str, nms_iou: float = NMS_IOU,
                   meets_target: bool = True) -> None:
    text = f"""# Project-trained detector, shipped in models/ (bundled: true). Written by training/kitchen_det/export.py;
# retrain with: {source}
name: {name}
description: {_q(description)}
file: {onnx_file}
sha256: {digest}
bundled: true
source: {_q('trained by this project: ' + source)}
license: {_q(license)}
input:
  name: images
  width: {imgsz}
  height: {imgsz}
  layout: NCHW
  colorOrder: BGR
  mean: [0, 0, 0]
  std: [1, 1, 1]
  resize:
    mode: letterbox
    align: top-left
    pad: 114
decoder:
  family: yolox
  output: output
  strides: [8, 16, 32]
  gridOffset: 0
# Chosen on the dev-val split {"for " + TARGET_TEXT if meets_target else "as the closest to " + TARGET_TEXT + " (NOT met)"} (see {name}.md).
scoreThreshold: {threshold:.2f}
nmsIou: {nms_iou}
classNames: [{class_name}]
classes:
  0: {label}
"""
    with open(path, "w") as f:
        f.write(text)


def fmt_s(sec: float) -> str:
    m, s = divmod(int(round(sec)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def write_card(path: str, info: dict) -> None:
    i = info
    ev = i["val_onnx"]
    best_h = max(i["history"], key=lambda h: h["ap50"]) if i["history"] else None
    if os.path.basename(i.get('init', 'yolox_nano.onnx')) == 'yolox_nano.onnx':
        init_line = (f"- Initialised from the COCO weights of `yolox_nano.onnx` (Megvii YOLOX-nano via\n"
                     f"  Kazuhito00/YOLOX-ONNX-TFLite-Sample): all 113 conv tensors loaded by `training/kitchen_det/onnx_init.py`,\n"
                     f"  checked before training (torch vs onnxruntime on a random input: max abs diff {i['loader_diff']:.1e});\n"
                     f"  the 80-class conv replaced by a 1-class conv, objectness and box convs kept.")
    else:
        init_line = (f"- Initialised from `{i['init']}` (sha256 `{i.get('init_sha256', '?')}`, the model this one replaces; its\n"
                     f"  card and file are in git history): all conv tensors loaded by `training/kitchen_det/onnx_init.py`,\n"
                     f"  checked before training (torch vs onnxruntime on a random input: max abs diff {i['loader_diff']:.1e}).")
    best_line = (f"Exported weights: the EMA after epoch {best_h['epoch']} (best torch val AP50 {best_h['ap50']:.3f})."
                 if best_h else "")
    hist = "\n".join(f"| {h['epoch']} | {h['iters']} | {h['loss']:.3f} | {h['ap50']:.3f} | {h['elapsed_s'] / 60:.1f} |"
                     for h in i["history"])
    text = f"""# {i['name']} — {i['label']} detector (project-trained)

A YOLOX-nano-sized detector (0.9 M parameters, depthwise CSPDarknet + PAFPN + decoupled head)
fine-tuned by this project for the canonical label **`{i['label']}`** ({i['violation']}).
Manifest: `{i['name']}.model.yaml` (decoder `yolox`, bundled file `{i['name']}.onnx`).

## Model
- Input `images` float32 [1, 3, {i['imgsz']}, {i['imgsz']}], BGR, raw 0..255, letterbox top-left, pad 114.
- Output `output` float32 [1, {i['rows']}, 6]: x, y (cell top-left offsets, strides 8/16/32), log w, log h,
  objectness, class score `{i['class_name']}` (both sigmoided). Same layout as `yolox_nano.onnx`.
{init_line}
- File: {i['size_bytes'] / 1e6:.2f} MB, sha256 `{i['sha256']}`, ONNX opset 17.
  Exported file vs torch (onnxruntime, random + real image): max abs diff {i['export_diff']:.1e}.

## Data
- `{i['data']}`: {i['n_train']} train images ({i['n_train_boxes']} boxes), {i['n_val']} val images ({i['n_val_boxes']} boxes);
  class 0 `{i['class_name']}` → `{i['label']}`. Source: {i['data_source']}.
{''.join(f"- Background (hard negatives, no boxes): {n} photos from `{spec}`.{chr(10)}" for spec, n in i.get('negatives') or [])}- Read in place from the shared data folder; nothing of it is in the repository.

## Training
- Command: `{i['command']}`
{f"- Started from the weights of `{i['start_from']}` (an earlier run; its epochs are not in the table below).{chr(10)}" if i.get('start_from') else ''}- {i['epochs_done']} evaluations (epochs; the last one may be cut by the time budget{'' if not i['time_budget'] else f" of {i['time_budget']:g} min"}; at most {i['epochs']} epochs),
  batch {i['batch']}, input {i['imgsz']}, AdamW lr {i['lr']:g} (new class conv x{i['head_lr_mult']:g}), warm-up then cosine decay
  (following time when a budget is set), EMA of weights (the exported weights are the EMA of the best-AP50 epoch),
  SimOTA assignment, loss 5·(1−IoU²) + BCE(obj) + BCE(cls). Backbone stages kept frozen at COCO weights: {i['frozen']}.
- Augmentation: mosaic (p {i['mosaic']}), random scale {i['scale']} and placement, horizontal flip, HSV jitter,
  greyscale night/IR look (p {i['grey']}), light blur and noise.
- Time: {fmt_s(i['train_seconds'])} wall (val passes included) on {i['cpu']} ({i['threads']} torch thread{'s' if i['threads'] != 1 else ''}, shared machine),
  {i['images_per_s']:.1f} training images/s.

| epoch | iterations | mean loss | val AP50 (torch EMA) | elapsed min |
|---|---|---|---|---|
{hist}

{best_line}

## Dev-val figures (the exported ONNX, onnxruntime, deployment letterbox + decoder + NMS {ev['nms_iou']})
- **AP50 {ev['ap50_agent_floor']:.3f}** with detections down to score {AGENT_EVAL_FLOOR} (as `npm run eval` ranks them by default),
  **{ev['ap50']:.3f}** down to 0.01 (`--floor 0.01`), on {ev['images']} val images ({ev['gt']} boxes; TP at IoU ≥ 0.5).
- Default threshold **{ev['threshold']:.2f}** (manifest `scoreThreshold`): precision **{ev['precision']:.3f}**,
  recall **{ev['recall']:.3f}** ({ev['tp']} of {ev['detections']} detections correct). {'Meets' if ev['meets_target'] else 'Does NOT meet'} the target {TARGET_TEXT};
  {'chosen as the threshold with the widest margin over both' if ev['meets_target'] else 'chosen as the threshold closest to both (smallest shortfall on the worse one)'}.
- NMS IoU tried on val: {', '.join(f"{x['nms_iou']}: AP50 {x['ap50']:.3f}" for x in ev['by_nms'])}; the manifest's `nmsIou` is {ev['nms_iou']}.
- Caveat: the checkpoint (best epoch) and the threshold were both chosen on this val split, so these
  are development figures, a little optimistic; the project's `npm run eval` is the independent check.

## Speed (onnxruntime {i['ort_version']}, {i['cpu']}, batch 1, {i['imgsz']}x{i['imgsz']})
- {i['ms_1t']:.1f} ms on 1 thread, {i['ms_2t']:.1f} ms on 2 threads (median, Python onnxruntime, machine shared with other work).

## Licenses
- Base weights: YOLOX (Megvii) Apache-2.0 (`../shared/models/licenses/yolox_nano.LICENSE`); this file is a derivative
  (fine-tuned weights), distributed under Apache-2.0 with that notice.
- Training data: {i['data_license']}
- Training code: this project (`training/`).

## Known limits
{i['limits']}
"""
    with open(path, "w") as f:
        f.write(text)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{os.cpu_count()}-core {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"{os.cpu_count()}-core {platform.machine()}"
