"""Initialise the torch YOLOX-nano from ../shared/models/yolox_nano.onnx (COCO weights, BN folded).

The ONNX file's tensors are mostly numbered, so names cannot be matched. Instead: list the graph's
Conv nodes in graph (topological) order, run the torch model once with forward hooks recording the
order in which its Conv2d modules are called, and pair the two lists one to one, checking each
shape, group count, stride and padding. `verify()` then runs both on the same random input and
reports the largest absolute difference of the outputs: a wrong pairing shows up as a large error.

    python -m kitchen_det.onnx_init ../shared/models/yolox_nano.onnx     # load + verify, prints the diff
"""
from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn as nn

from .model import YoloxNano


def onnx_convs(path: str):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    inits = {t.name: t for t in m.graph.initializer}
    convs = []
    for node in m.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = numpy_helper.to_array(inits[node.input[1]])
        b = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 else None
        convs.append(dict(name=node.input[1], weight=w, bias=b, group=int(attrs.get("group", 1)),
                          stride=tuple(attrs.get("strides", [1, 1])), pads=tuple(attrs.get("pads", [0, 0, 0, 0]))))
    inp = m.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    return convs, dims


def torch_convs_in_call_order(model: nn.Module, h: int, w: int):
    order: list[nn.Conv2d] = []
    hooks = [mod.register_forward_hook(lambda mod, i, o: order.append(mod))
             for mod in model.modules() if isinstance(mod, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))
    for hk in hooks:
        hk.remove()
    model.train(was_training)
    return order


def onnx_num_classes(path: str) -> int:
    """Classes of a YOLOX ONNX file: its output is [1, anchors, 5 + classes]."""
    import onnx

    dims = [d.dim_value for d in onnx.load(path).graph.output[0].type.tensor_type.shape.dim]
    if len(dims) != 3 or dims[2] <= 5:
        raise ValueError(f"{path}: output shape {dims} is not a YOLOX [1, anchors, 5 + classes]")
    return dims[2] - 5


def load_onnx_weights(model: YoloxNano, path: str) -> int:
    """Copy every Conv initializer of the ONNX graph into `model` (same class count). Returns the count."""
    convs, dims = onnx_convs(path)
    h, w = dims[2] or 416, dims[3] or 416
    mods = torch_convs_in_call_order(model, h, w)
    if len(mods) != len(convs):
        raise RuntimeError(f"{path}: {len(convs)} Conv nodes but the torch model calls {len(mods)} Conv2d")
    for i, (mod, c) in enumerate(zip(mods, convs)):
        pads = (mod.padding[0], mod.padding[1], mod.padding[0], mod.padding[1])
        ok = (tuple(mod.weight.shape) == c["weight"].shape and mod.groups == c["group"]
              and tuple(mod.stride) == c["stride"] and pads == c["pads"] and c["bias"] is not None)
        if not ok:
            raise RuntimeError(f"conv #{i} ({c['name']}): ONNX weight {c['weight'].shape} group {c['group']} "
                               f"stride {c['stride']} pads {c['pads']} vs torch {tuple(mod.weight.shape)} "
                               f"group {mod.groups} stride {mod.stride} padding {mod.padding}")
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(np.array(c["weight"])))
            mod.bias.copy_(torch.from_numpy(np.array(c["bias"])))
    return len(convs)


def verify(model: YoloxNano, path: str, seed: int = 0) -> float:
    """Max |torch - onnxruntime| of the full output on a random BGR 0..255 image at the file's size."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    h, w = inp.shape[2], inp.shape[3]
    x = np.random.default_rng(seed).uniform(0, 255, size=(1, 3, h, w)).astype(np.float32)
    ref = sess.run(None, {inp.name: x})[0]
    was_export, was_training = model.export, model.training
    model.export = True
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    model.export = was_export
    model.train(was_training)
    if out.shape != ref.shape:
        raise RuntimeError(f"output shape {out.shape} vs ONNX {ref.shape}")
    return float(np.abs(out - ref).max())


def pretrained(path: str, num_classes: int, tol: float = 1e-2, log=print) -> YoloxNano:
    """Model initialised from a YOLOX ONNX file (the COCO weights, or a model this project shipped);
    its class conv is replaced by a fresh `num_classes` one when the file has another class count.
    The loader is verified first."""
    model = YoloxNano(onnx_num_classes(path))
    n = load_onnx_weights(model, path)
    diff = verify(model, path)
    log(f"init: {n} conv tensors loaded from {path}; torch vs onnxruntime max abs diff {diff:.2e} (tolerance {tol})")
    if not diff <= tol:
        raise RuntimeError(f"loader check failed: torch output differs from {path} by {diff}")
    if model.num_classes != num_classes:
        model.head.reset_cls(num_classes)
    model.loader_diff = diff
    return model


if __name__ == "__main__":
    p = sys.argv[1] if len(sys.argv) > 1 else "../shared/models/yolox_nano.onnx"
    m = YoloxNano(80)
    print("convs loaded:", load_onnx_weights(m, p))
    print("max abs diff vs onnxruntime:", verify(m, p))
