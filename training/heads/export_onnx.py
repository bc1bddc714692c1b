"""Exports a trained HeadAttrs to ONNX (dynamic batch), checks onnxruntime against torch on real crops,
and writes the file's sha256 and input side into the bundled manifest (models/head_attrs.model.yaml)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch


def export(model, out_dir: Path, sample_crops: np.ndarray, cut: int, size: int, log=print, name: str = "head_attrs") -> float:
    import onnxruntime as ort
    from train import centre, to_tensor

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_file = out_dir / f"{name}.onnx"
    model.eval()
    model.export = True
    dummy = torch.zeros(2, 3, size, size)
    torch.onnx.export(model, dummy, str(onnx_file), input_names=["crops"], output_names=["probs"], opset_version=17,
                      dynamic_axes={"crops": {0: "n"}, "probs": {0: "n"}}, dynamo=False)
    x = to_tensor(centre(sample_crops, cut, size))
    with torch.no_grad():
        ref = model(x).numpy()
    model.export = False
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = sess.run(["probs"], {"crops": x.numpy()})[0]
    one = sess.run(["probs"], {"crops": x.numpy()[:1]})[0]
    diff = float(np.abs(got - ref).max())
    diff1 = float(np.abs(one - ref[:1]).max())
    log(f"export: {onnx_file} ({onnx_file.stat().st_size / 1024:.0f} KiB); onnxruntime vs torch on {len(x)} real crops: max abs diff {diff:.2e} (batch of 1: {diff1:.2e})")
    if max(diff, diff1) > 1e-4:
        raise RuntimeError(f"onnxruntime and torch disagree by {max(diff, diff1)}")
    sha = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    manifest = out_dir / f"{name}.model.yaml"
    if manifest.exists():
        text = re.sub(r"^sha256: [0-9a-f]{64}$", f"sha256: {sha}", manifest.read_text(), count=1, flags=re.M)
        # The input side is the crops' (train.sh heads --size): the agent cuts crops to the manifest's.
        text = re.sub(r"^(  (?:width|height): )\d+", rf"\g<1>{size}", text, count=2, flags=re.M)
        text = re.sub(r"on \d+x\d+ head crops", f"on {size}x{size} head crops", text, count=1)
        manifest.write_text(text)
        log(f"export: {manifest} sha256 {sha}, input {size}x{size}")
    else:
        log(f"export: no {manifest} to update; sha256 {sha}")
    return diff
