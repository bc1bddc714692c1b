"""Train (fine-tune) a one-class YOLOX-nano detector and export it for the agent.

    bash training/train.sh rats    [--epochs N] [--imgsz 416] [--name NAME] [--resume] [--max-images N] [--export models/]
    bash training/train.sh smoking ...
    bash training/train.sh path/to/yolo_dataset --label rodent [--model-name my_rodent] ...

A dataset folder holds images/{train,val} and labels/{train,val} (YOLO txt, class 0 = the object).
Runs live in training/runs/<name>/ (last.pt resumable, best.pt, train.log, summary.json).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import shlex
import signal
import sys
import time

import numpy as np
import torch

from kitchen_det import data as D
from kitchen_det import export as X
from kitchen_det.evaluate import TARGET_TEXT, evaluate
from kitchen_det.loss import YoloxLoss
from kitchen_det.onnx_init import pretrained

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

PRESETS = {
    "rats": dict(dir="rats", label="rodent", model_name="rodent_yolox", class_name="rat", violation="rodent — rats, mice or other animals entering the kitchen (老鼠等动物进入)",
                 data_source="github.com/dpk0811/Rat-Detection, yolov7/data (a Roboflow export of web photos of rats and mice, a few night/IR; augmented copies of one photo kept on one side of the split)",
                 data_license_short="no license stated by its source repository (see the model card)",
                 data_license="the source repository states no license for the images (github.com/dpk0811/Rat-Detection). The weights are trained on them; before redistributing this model outside the project, have the data's terms checked or retrain on data with a known license (`bash training/train.sh <folder> --label rodent`)."),
    "smoking": dict(dir="smoking", label="cigarette", model_name="cigarette_yolox", class_name="smoking", violation="smoking in the kitchen (抽烟)",
                    data_source="github.com/Huyhoclaptrinh/smoking-detection, dataset/ (photos of people smoking; one box on the cigarette and smoke at the mouth or hand)",
                    data_license_short="MIT (Huyhoclaptrinh/smoking-detection)",
                    data_license="MIT (github.com/Huyhoclaptrinh/smoking-detection)."),
}

LIMITS = {
    "rodent": "- Trained on web photos (close-ups, daylight, some IR), not kitchen CCTV: a rat seen from a ceiling camera\n"
              "  is small, blurred and often grey (IR). Mosaic/scale/greyscale augmentation narrows that gap but does not\n"
              "  close it; collect site frames and retrain (`bash training/train.sh <folder> --label rodent`).\n"
              "- One class: rats and mice both → `rodent`; cats, dogs and other animals are left to the COCO model.\n"
              "- Pets and toys may fire; the rule engine's persistence (several seconds) filters single-frame hits.",
    "cigarette": "- The box is the cigarette and smoke at the mouth or hand, so it fires on the act of smoking, not on a\n"
                 "  cigarette pack. Small target: at the model input size a cigarette far from the camera is a few pixels; expect\n"
                 "  recall to drop on wide kitchen views (crop persons first or raise the input size for such sites).\n"
                 "- Look-alikes (pens, chopsticks, steam near the mouth) can fire; the rule's persistence filters most.\n"
                 "- Photos, not kitchen CCTV: retrain with site frames when available.",
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="rats | smoking | path to a YOLO-format dataset folder")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--imgsz", type=int, default=416, help="square training and export input size (multiple of 32)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate of the pretrained layers")
    p.add_argument("--head-lr-mult", type=float, default=5.0, help="learning-rate factor of the new class conv")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-iters", type=int, default=100)
    p.add_argument("--min-lr-ratio", type=float, default=0.05)
    p.add_argument("--ema-decay", type=float, default=0.998)
    p.add_argument("--mosaic", type=float, default=0.5, help="probability of a mosaic sample")
    p.add_argument("--grey", type=float, default=None, help="probability of the greyscale night/IR look (default 0.3 rodent, 0.15 else)")
    p.add_argument("--scale", type=float, nargs=2, default=(0.5, 1.3), help="random scale range of single images")
    p.add_argument("--name", help="run name (default: the model name)")
    p.add_argument("--project", default=os.path.join(HERE, "runs"), help="folder holding runs (default training/runs)")
    p.add_argument("--resume", action="store_true", help="continue runs/<name>/last.pt")
    p.add_argument("--max-images", type=int, help="use only the first N train images (and N val images): smoke tests")
    p.add_argument("--export", metavar="DIR", help="write <model>.onnx, <model>.model.yaml and <model>.md into DIR")
    p.add_argument("--label", help="canonical label of class 0 (presets: rodent / cigarette)")
    p.add_argument("--model-name", help="exported model name (presets: rodent_yolox / cigarette_yolox)")
    p.add_argument("--class-name", help="the dataset's own name of class 0 (documentation)")
    p.add_argument("--init", default=os.path.join(SHARED, "models", "yolox_nano.onnx"), help="ONNX with the COCO initial weights")
    p.add_argument("--negatives", metavar="DIR", nargs="+", default=[],
                   help="folders of photos without the object (e.g. kitchens, people): added to training as background, "
                        "so the detector learns what is NOT the object; 'DIR:N' takes the first N images")
    p.add_argument("--from", dest="start_from", metavar="CKPT",
                   help="start from the (EMA) weights of an earlier run's checkpoint, e.g. training/runs/rodent_yolox/best.pt "
                        "(fresh optimizer and schedule: fine-tune at another input size or on new data)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--time-budget", type=float, metavar="MIN",
                   help="train for at most MIN minutes of wall time: the LR schedule follows max(iteration, time) "
                        "progress and training ends (with a final val) when the time is up; --epochs stays the maximum")
    p.add_argument("--freeze", default="stem,dark2",
                   help="comma-separated backbone stages kept at their COCO weights (stem, dark2, dark3, ...; '' = none): "
                        "their backward pass is skipped, the costliest part at full resolution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=50, help="also write last.pt every N iterations")
    p.add_argument("--bench-runs", type=int, default=100, help="timed onnxruntime runs for the model card")
    p.add_argument("--export-only", action="store_true", help="skip training: export runs/<name>/best.pt")
    return p.parse_args(argv)


class EMA:
    """Exponential moving average of the weights, with YOLOX's ramp: d = decay * (1 - exp(-updates / tau))."""

    def __init__(self, model, decay: float, tau: float = 300.0, updates: int = 0):
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, updates

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)


def resolve_dataset(a):
    preset = PRESETS.get(a.data)
    if preset:
        root = os.path.join(SHARED, "data", preset["dir"])
        meta = dict(preset)
    else:
        root = os.path.abspath(a.data)
        base = os.path.basename(root.rstrip("/"))
        preset = PRESETS.get(base)  # ../shared/data/rats given as a path
        meta = dict(preset) if preset else dict(label=None, model_name=None, class_name=None, violation="",
                                                 data_source=root, data_license="see the dataset's own terms.")
    meta["label"] = a.label or meta["label"]
    if not meta["label"]:
        sys.exit(f"train: {a.data} is not a preset (rats, smoking): pass --label <canonical label>")
    meta["model_name"] = a.model_name or meta["model_name"] or f"{meta['label']}_yolox"
    meta["class_name"] = a.class_name or meta["class_name"] or meta["label"]
    meta["violation"] = meta["violation"] or meta["label"]
    return root, meta


def lr_at(it: int, progress: float, a) -> float:
    """Linear warm-up over the first iterations, then cosine from 1 to min_lr_ratio as progress goes 0 → 1."""
    if it < a.warmup_iters:
        return (it + 1) / a.warmup_iters
    return a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model, a):
    new, decay, no_decay = [], [], []
    new_ids = {id(p) for p in model.head.cls_preds.parameters()}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if id(p) in new_ids:
            new.append(p)
        elif p.ndim > 1:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [dict(params=decay, weight_decay=a.weight_decay, mult=1.0),
              dict(params=no_decay, weight_decay=0.0, mult=1.0),
              dict(params=new, weight_decay=0.0, mult=a.head_lr_mult)]
    return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999))


def main(argv):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.imgsz % 32:
        sys.exit("train: --imgsz must be a multiple of 32")
    root, meta = resolve_dataset(a)
    name = a.name or meta["model_name"]
    run = os.path.join(a.project, name)
    if a.export_only:
        # Describe the run as it was trained: its recorded options, not this command's defaults.
        saved = torch.load(os.path.join(run, "best.pt"), map_location="cpu", weights_only=False)["args"] \
            if os.path.exists(os.path.join(run, "best.pt")) else {}
        for k in ("epochs", "time_budget", "imgsz", "batch", "lr", "head_lr_mult", "weight_decay", "mosaic", "grey",
                  "scale", "freeze", "threads", "max_images", "seed", "negatives", "start_from"):
            if k in saved:
                setattr(a, k, saved[k])
    os.makedirs(run, exist_ok=True)
    logf = open(os.path.join(run, "train.log"), "a")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n"); logf.flush()

    grey = a.grey if a.grey is not None else (0.3 if meta["label"] == "rodent" else 0.15)
    train_s = D.read_split(root, "train", [0], a.max_images)
    negatives = []  # (spec, images) per --negatives folder, for the model card
    for spec in a.negatives:
        folder, _, n = spec.partition(":")
        neg = D.read_folder(folder, int(n) if n else a.max_images)
        log(f"negatives: {len(neg)} images from {folder} (no boxes)")
        negatives.append((spec, len(neg)))
        train_s += neg
    val_s = D.read_split(root, "val", [0], a.max_images)
    n_tb, n_vb = sum(len(s.boxes) for s in train_s), sum(len(s.boxes) for s in val_s)
    log(f"data {root}: train {len(train_s)} images / {n_tb} boxes, val {len(val_s)} images / {n_vb} boxes; "
        f"class 0 '{meta['class_name']}' -> {meta['label']}; run {run}")

    init_sha256 = X.sha256(a.init)  # the init file may be the model this run replaces: the card names it
    model = pretrained(a.init, 1, log=log)
    loader_diff = model.loader_diff
    if a.start_from and not (a.resume or a.export_only):
        model.load_state_dict(torch.load(a.start_from, map_location="cpu", weights_only=False)["ema"])
        log(f"weights from {a.start_from}")
    frozen = [f for f in a.freeze.split(",") if f]
    for n, prm in model.named_parameters():
        if any(n.startswith(f"backbone.backbone.{f}.") for f in frozen):
            prm.requires_grad_(False)
    opt = make_optimizer(model, a)
    ema = EMA(model, a.ema_decay)
    iters_per_epoch = math.ceil(len(train_s) / a.batch)
    total_iters = a.epochs * iters_per_epoch
    state = dict(epoch=0, iter_in_epoch=0, global_iter=0, best_ap=-1.0, elapsed=0.0, history=[], loss_sum=0.0, loss_n=0,
                 images_seen=0, train_seconds=0.0)
    last_pt, best_pt = os.path.join(run, "last.pt"), os.path.join(run, "best.pt")

    if a.resume or a.export_only:
        ck_path = last_pt if a.resume else best_pt
        if not os.path.exists(ck_path):
            sys.exit(f"train: {ck_path} not found (nothing to {'resume' if a.resume else 'export'})")
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        ema.ema.load_state_dict(ck["ema"])
        ema.updates = ck["ema_updates"]
        if "optimizer" in ck:
            opt.load_state_dict(ck["optimizer"])
        state.update(ck["state"])
        log(f"resumed {ck_path}: epoch {state['epoch']} iteration {state['iter_in_epoch']}/{iters_per_epoch}, "
            f"best AP50 {state['best_ap']:.3f}, {state['train_seconds'] / 60:.1f} min trained so far")

    def save(path, with_opt=True):
        ck = dict(model=model.state_dict(), ema=ema.ema.state_dict(), ema_updates=ema.updates, state=state,
                  args=vars(a), meta=meta, imgsz=a.imgsz)
        if with_opt:
            ck["optimizer"] = opt.state_dict()
        tmp = path + ".tmp"
        torch.save(ck, tmp)
        os.replace(tmp, path)

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True
        log(f"signal {signum}: saving last.pt after this iteration")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    loss_fn = YoloxLoss(1)
    if not a.export_only and state["epoch"] < a.epochs:
        log(f"training {a.epochs} epochs x {iters_per_epoch} iterations (batch {a.batch}, input {a.imgsz}, "
            f"lr {a.lr:g}, threads {a.threads}, mosaic {a.mosaic}, grey {grey}, frozen {frozen or 'none'}"
            f"{f', time budget {a.time_budget:g} min' if a.time_budget else ''})")
        model.train()
        t_seg = time.time()
        def progress():
            p_it = state["global_iter"] / max(1, total_iters)
            if not a.time_budget:
                return p_it
            return max(p_it, (state["train_seconds"] + time.time() - t_seg) / (a.time_budget * 60))

        out_of_time = False
        while state["epoch"] < a.epochs and not stop["flag"] and not out_of_time:
            ep = state["epoch"]
            ds = D.TrainSet(train_s, a.imgsz, seed=a.seed * 1000 + ep, mosaic=a.mosaic, grey=grey, scale=tuple(a.scale))
            order = list(range(len(train_s)))
            random.Random(a.seed * 7919 + ep).shuffle(order)
            # Fast-forward the augmentation stream when resuming mid-epoch is not worth it: a fresh seed per resume.
            if state["iter_in_epoch"]:
                ds.rng.seed(a.seed * 1000 + ep + 17 * state["iter_in_epoch"])
            t_log, n_log = time.time(), 0
            while state["iter_in_epoch"] < iters_per_epoch and not stop["flag"]:
                if a.time_budget and progress() >= 1.0:
                    out_of_time = True
                    log(f"time budget of {a.time_budget:g} min reached in epoch {ep + 1} at iteration {state['iter_in_epoch']}")
                    break
                k = state["iter_in_epoch"]
                batch = [ds[j] for j in order[k * a.batch:(k + 1) * a.batch]]
                ims, tg = D.collate(batch)
                f = lr_at(state["global_iter"], progress(), a)
                for g in opt.param_groups:
                    g["lr"] = a.lr * f * g["mult"]
                loss, parts = loss_fn(model(torch.from_numpy(ims)), tg, a.imgsz)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                ema.update(model)
                state["iter_in_epoch"] += 1
                state["global_iter"] += 1
                state["images_seen"] += len(batch)
                state["loss_sum"] += loss.item(); state["loss_n"] += 1
                n_log += len(batch)
                if state["iter_in_epoch"] % a.log_every == 0 or state["iter_in_epoch"] == iters_per_epoch:
                    dt = time.time() - t_log
                    log(f"epoch {ep + 1}/{a.epochs} iter {state['iter_in_epoch']}/{iters_per_epoch} "
                        f"loss {state['loss_sum'] / state['loss_n']:.3f} (last: iou {parts['iou']:.3f} obj {parts['obj']:.3f} cls {parts['cls']:.3f} fg/img {parts['fg']:.1f}) "
                        f"lr {a.lr * f:.2e} {n_log / max(dt, 1e-6):.1f} img/s")
                    t_log, n_log = time.time(), 0
                if state["iter_in_epoch"] % a.save_every == 0:
                    state["train_seconds"] += time.time() - t_seg; t_seg = time.time()
                    save(last_pt)
            if stop["flag"]:
                break  # stopped by a signal: last.pt is written below
            if out_of_time and state["iter_in_epoch"] == 0:
                break  # the budget ran out right after the previous epoch's val
            res = evaluate(ema.ema, val_s, a.imgsz)
            state["train_seconds"] += time.time() - t_seg; t_seg = time.time()  # wall time, val included
            mean_loss = state["loss_sum"] / max(1, state["loss_n"])
            state["history"].append(dict(epoch=ep + 1, iters=state["global_iter"], loss=mean_loss, ap50=res["ap50"],
                                         precision=res["precision"], recall=res["recall"], threshold=res["threshold"],
                                         elapsed_s=state["train_seconds"]))
            log(f"epoch {ep + 1}/{a.epochs} {'done' if not out_of_time else 'cut by the time budget'}: mean loss {mean_loss:.3f}, val AP50 {res['ap50']:.4f}, "
                f"at threshold {res['threshold']:.2f} P {res['precision']:.3f} R {res['recall']:.3f}"
                f"{' (meets ' + TARGET_TEXT + ')' if res['meets_target'] else ''}; "
                f"{state['images_seen'] / max(state['train_seconds'], 1e-6):.1f} img/s overall, {state['train_seconds'] / 60:.1f} min trained")
            if state["iter_in_epoch"] >= iters_per_epoch:
                state["epoch"] += 1
                state["iter_in_epoch"] = 0
            state["loss_sum"], state["loss_n"] = 0.0, 0
            if res["ap50"] > state["best_ap"] or not os.path.exists(best_pt):
                state["best_ap"] = res["ap50"]
                save(best_pt, with_opt=False)
                log(f"best.pt <- epoch {ep + 1} (AP50 {res['ap50']:.4f})")
            save(last_pt)
            t_seg = time.time()
        state["train_seconds"] += time.time() - t_seg
        save(last_pt)
        if stop["flag"]:
            log(f"stopped; resume with --resume (run {run})")
            return 130
        log(f"training done: {state['train_seconds'] / 60:.1f} min, best val AP50 {state['best_ap']:.4f}")

    if a.export:
        best = torch.load(best_pt, map_location="cpu", weights_only=False)
        model.load_state_dict(best["ema"])
        out_dir = os.path.abspath(a.export)
        os.makedirs(out_dir, exist_ok=True)
        mname = meta["model_name"]
        onnx_path = os.path.join(out_dir, f"{mname}.onnx")
        X.export_onnx(model, a.imgsz, onnx_path)
        diff = X.torch_vs_ort(model, onnx_path, a.imgsz, val_s[0].image if val_s else None)
        log(f"exported {onnx_path} ({os.path.getsize(onnx_path) / 1e6:.2f} MB); onnxruntime vs torch max abs diff {diff:.2e}")
        if not diff < 1e-2:
            sys.exit(f"train: exported ONNX differs from torch by {diff}")
        ev = X.eval_onnx(onnx_path, val_s, a.imgsz)
        log(f"exported model on val (NMS {ev['nms_iou']}): AP50 {ev['ap50']:.4f} (floor 0.01), {ev['ap50_agent_floor']:.4f} (floor 0.05); threshold {ev['threshold']:.2f}: P {ev['precision']:.3f} R {ev['recall']:.3f} "
            f"({ev['tp']}/{ev['detections']} detections, {ev['gt']} boxes){'' if ev['meets_target'] else ' — target ' + TARGET_TEXT + ' NOT met'}")
        ms1 = X.bench(onnx_path, a.imgsz, 1, a.bench_runs)
        ms2 = X.bench(onnx_path, a.imgsz, 2, a.bench_runs)
        log(f"inference {a.imgsz}x{a.imgsz}: {ms1:.1f} ms on 1 thread, {ms2:.1f} ms on 2 threads (onnxruntime, median of {a.bench_runs})")
        digest = X.sha256(onnx_path)
        data_arg = a.data if a.data in PRESETS else os.path.relpath(root, ROOT)
        cmd_parts = ["bash", "training/train.sh", data_arg, "--epochs", str(a.epochs), "--imgsz", str(a.imgsz)]
        if a.time_budget:
            cmd_parts += ["--time-budget", f"{a.time_budget:g}"]
        if a.max_images:
            cmd_parts += ["--max-images", str(a.max_images)]
        if a.data not in PRESETS and not PRESETS.get(os.path.basename(root)):
            cmd_parts += ["--label", meta["label"]]
        defaults = parse_args([a.data])
        for key in ("lr", "mosaic", "freeze"):
            if getattr(a, key) != getattr(defaults, key):
                cmd_parts += [f"--{key}", f"{getattr(a, key):g}" if key != "freeze" else a.freeze]
        if a.negatives:
            cmd_parts += ["--negatives", *a.negatives]
        if a.start_from:
            cmd_parts += ["--from", a.start_from]
        if os.path.abspath(a.init) != os.path.abspath(defaults.init):
            cmd_parts += ["--init", os.path.relpath(a.init, ROOT)]
        cmd_parts += ["--export", "models/"]
        command = " ".join(shlex.quote(c) for c in cmd_parts)
        license_text = ("Apache-2.0 (fine-tuned from Megvii YOLOX-nano COCO weights); training data: "
                        + meta.get("data_license_short", "see the model card"))
        X.write_manifest(os.path.join(out_dir, f"{mname}.model.yaml"), name=mname, onnx_file=f"{mname}.onnx", digest=digest,
                         imgsz=a.imgsz, class_name=meta["class_name"], label=meta["label"], threshold=ev["threshold"],
                         description=f"Project-trained YOLOX-nano, one class: {meta['class_name']} -> {meta['label']}. "
                                     f"Dev-val AP50 {ev['ap50_agent_floor']:.3f}; at the default threshold P {ev['precision']:.2f} R {ev['recall']:.2f}.",
                         source=command, license=license_text, nms_iou=ev["nms_iou"],
                         meets_target=ev["meets_target"])
        import onnxruntime
        if a.export_only and os.path.exists(last_pt):  # the whole run's history and time, not best.pt's snapshot
            state = torch.load(last_pt, map_location="cpu", weights_only=False)["state"]
        hist = state["history"]
        info = dict(name=mname, label=meta["label"], violation=meta["violation"], class_name=meta["class_name"], imgsz=a.imgsz,
                    rows=sum((a.imgsz // s) ** 2 for s in (8, 16, 32)), loader_diff=loader_diff,
                    size_bytes=os.path.getsize(onnx_path), sha256=digest, export_diff=diff,
                    data=os.path.relpath(root, ROOT) if root.startswith(os.path.dirname(ROOT)) else root,
                    n_train=len(train_s) - sum(k for _, k in negatives), n_train_boxes=n_tb, n_val=len(val_s), n_val_boxes=n_vb,
                    data_source=meta["data_source"], data_license=meta["data_license"], command=command,
                    negatives=negatives, start_from=a.start_from, init=os.path.relpath(a.init, ROOT), init_sha256=init_sha256,
                    epochs=a.epochs, epochs_done=len(hist), time_budget=a.time_budget, frozen=", ".join(frozen) or "none", batch=a.batch, lr=a.lr, head_lr_mult=a.head_lr_mult, mosaic=a.mosaic,
                    scale=f"{a.scale[0]:g}-{a.scale[1]:g}", grey=grey, train_seconds=state["train_seconds"],
                    cpu=X.cpu_name(), threads=a.threads, images_per_s=state["images_seen"] / max(state["train_seconds"], 1e-6),
                    history=hist, val_onnx=ev, ort_version=onnxruntime.__version__, ms_1t=ms1, ms_2t=ms2,
                    limits=LIMITS.get(meta["label"], "- Trained on the given dataset only; check it on site frames."))
        X.write_card(os.path.join(out_dir, f"{mname}.md"), info)
        with open(os.path.join(run, "summary.json"), "w") as f:
            json.dump({k: v for k, v in info.items() if k != "limits"}, f, indent=2, default=str)
        log(f"wrote {mname}.onnx, {mname}.model.yaml, {mname}.md in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
