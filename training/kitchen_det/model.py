"""YOLOX-nano-like detector: depthwise CSPDarknet backbone, PAFPN neck, decoupled head.

Same layout as Megvii YOLOX-nano (depth 0.33, width 0.25, depthwise) so the COCO weights of
../shared/models/yolox_nano.onnx map onto it one conv at a time. Batch norm is folded into the
convolutions in that file, so every conv here has a bias and there is no BN layer: the network
trains as a plain conv + SiLU stack (fine at the low learning rates used for fine-tuning).

Output contract (export mode, `model.export = True`): one tensor [B, N, 5 + C], rows are grid cells of
strides 8, 16, 32 in row-major order; row = [x, y, w, h, objectness, class scores] with x, y offsets
from the cell's top-left corner (no +0.5), w, h log-space in stride units, objectness and classes
already sigmoided. This is what the agent's `yolox` decoder reads.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDES = (8, 16, 32)


class BaseConv(nn.Module):
    """Conv (bias = folded BN) + SiLU."""

    def __init__(self, cin: int, cout: int, k: int, s: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=True)

    def forward(self, x):
        return F.silu(self.conv(x))


class DWConv(nn.Module):
    """Depthwise k x k conv + pointwise 1x1 conv, each with SiLU."""

    def __init__(self, cin: int, cout: int, k: int, s: int = 1):
        super().__init__()
        self.dconv = BaseConv(cin, cin, k, s, groups=cin)
        self.pconv = BaseConv(cin, cout, 1, 1)

    def forward(self, x):
        return self.pconv(self.dconv(x))


class Focus(nn.Module):
    """Space-to-depth (2x2 pixels into channels) then a 3x3 conv."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.conv = BaseConv(cin * 4, cout, k, 1)

    def forward(self, x):
        tl = x[..., ::2, ::2]
        tr = x[..., ::2, 1::2]
        bl = x[..., 1::2, ::2]
        br = x[..., 1::2, 1::2]
        return self.conv(torch.cat((tl, bl, tr, br), dim=1))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool):
        super().__init__()
        self.conv1 = BaseConv(c, c, 1, 1)
        self.conv2 = DWConv(c, c, 3, 1)
        self.add = shortcut

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return y + x if self.add else y


class CSPLayer(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True):
        super().__init__()
        h = cout // 2
        self.conv1 = BaseConv(cin, h, 1, 1)
        self.conv2 = BaseConv(cin, h, 1, 1)
        self.m = nn.Sequential(*[Bottleneck(h, shortcut) for _ in range(n)])
        self.conv3 = BaseConv(2 * h, cout, 1, 1)

    def forward(self, x):
        # Call order (conv1, conv2, m, conv3) is the ONNX graph's order: the loader relies on it.
        x1 = self.conv1(x)
        x2 = self.conv2(x)
        x1 = self.m(x1)
        return self.conv3(torch.cat((x1, x2), dim=1))


class SPPBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, ks=(5, 9, 13)):
        super().__init__()
        h = cin // 2
        self.conv1 = BaseConv(cin, h, 1, 1)
        self.ks = ks
        self.conv2 = BaseConv(h * (len(ks) + 1), cout, 1, 1)

    def forward(self, x):
        x = self.conv1(x)
        x = torch.cat([x] + [F.max_pool2d(x, k, 1, k // 2) for k in self.ks], dim=1)
        return self.conv2(x)


class CSPDarknet(nn.Module):
    def __init__(self, w: int = 16, n: int = 1):
        super().__init__()
        self.stem = Focus(3, w, 3)
        self.dark2 = nn.Sequential(DWConv(w, w * 2, 3, 2), CSPLayer(w * 2, w * 2, n))
        self.dark3 = nn.Sequential(DWConv(w * 2, w * 4, 3, 2), CSPLayer(w * 4, w * 4, 3 * n))
        self.dark4 = nn.Sequential(DWConv(w * 4, w * 8, 3, 2), CSPLayer(w * 8, w * 8, 3 * n))
        self.dark5 = nn.Sequential(DWConv(w * 8, w * 16, 3, 2), SPPBottleneck(w * 16, w * 16),
                                   CSPLayer(w * 16, w * 16, n, shortcut=False))

    def forward(self, x):
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        c5 = self.dark5(c4)
        return c3, c4, c5


class PAFPN(nn.Module):
    def __init__(self, c3: int = 64, c4: int = 128, c5: int = 256, n: int = 1):
        super().__init__()
        self.backbone = CSPDarknet(c3 // 4, n)
        self.lateral_conv0 = BaseConv(c5, c4, 1, 1)
        self.C3_p4 = CSPLayer(2 * c4, c4, n, False)
        self.reduce_conv1 = BaseConv(c4, c3, 1, 1)
        self.C3_p3 = CSPLayer(2 * c3, c3, n, False)
        self.bu_conv2 = DWConv(c3, c3, 3, 2)
        self.C3_n3 = CSPLayer(2 * c3, c4, n, False)
        self.bu_conv1 = DWConv(c4, c4, 3, 2)
        self.C3_n4 = CSPLayer(2 * c4, c5, n, False)

    def forward(self, x):
        x2, x1, x0 = self.backbone(x)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = torch.cat([F.interpolate(fpn_out0, scale_factor=2.0, mode="nearest"), x1], 1)
        f_out0 = self.C3_p4(f_out0)
        fpn_out1 = self.reduce_conv1(f_out0)
        f_out1 = torch.cat([F.interpolate(fpn_out1, scale_factor=2.0, mode="nearest"), x2], 1)
        pan_out2 = self.C3_p3(f_out1)
        p_out1 = torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1)
        pan_out1 = self.C3_n3(p_out1)
        p_out0 = torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1)
        pan_out0 = self.C3_n4(p_out0)
        return pan_out2, pan_out1, pan_out0


class Head(nn.Module):
    """Decoupled head: per level a 1x1 stem, then a cls branch and a reg branch (2 DWConv each)."""

    def __init__(self, num_classes: int, in_channels=(64, 128, 256), width: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.stems = nn.ModuleList(BaseConv(c, width, 1, 1) for c in in_channels)
        self.cls_convs = nn.ModuleList(nn.Sequential(DWConv(width, width, 3), DWConv(width, width, 3)) for _ in in_channels)
        self.reg_convs = nn.ModuleList(nn.Sequential(DWConv(width, width, 3), DWConv(width, width, 3)) for _ in in_channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(width, num_classes, 1) for _ in in_channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(width, 4, 1) for _ in in_channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in in_channels)

    def reset_cls(self, num_classes: int, prior: float = 0.01) -> None:
        """Replace the class convs (COCO 80) by fresh `num_classes` convs; obj/reg keep their weights."""
        self.num_classes = num_classes
        width = self.cls_preds[0].in_channels
        self.cls_preds = nn.ModuleList(nn.Conv2d(width, num_classes, 1) for _ in self.stems)
        for conv in self.cls_preds:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.constant_(conv.bias, -math.log((1 - prior) / prior))

    def forward(self, feats):
        """Per level: [B, 4 + 1 + C, H, W] raw (reg, obj logit, cls logits)."""
        outs = []
        for k, x in enumerate(feats):
            x = self.stems[k](x)
            cls_out = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            outs.append(torch.cat([self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat), cls_out], 1))
        return outs


class YoloxNano(nn.Module):
    def __init__(self, num_classes: int = 80):
        super().__init__()
        self.backbone = PAFPN()
        self.head = Head(num_classes)
        self.export = False

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def forward(self, x):
        outs = self.head(self.backbone(x))
        if not self.export:
            return outs
        return flatten_outputs(outs, sigmoid=True)


def flatten_outputs(outs, sigmoid: bool):
    """Per-level [B, 5+C, H, W] → [B, N, 5+C] (rows row-major per level, levels by stride)."""
    rows = []
    for o in outs:
        if sigmoid:
            o = torch.cat([o[:, :4], o[:, 4:].sigmoid()], 1)
        rows.append(o.flatten(2))
    return torch.cat(rows, 2).permute(0, 2, 1)


def grids(imgsz_h: int, imgsz_w: int, device=None):
    """Grid cell top-left coordinates (in cells) and strides for every output row: ([N, 2], [N])."""
    xy, st = [], []
    for s in STRIDES:
        gh, gw = imgsz_h // s, imgsz_w // s
        yv, xv = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
        xy.append(torch.stack((xv, yv), 2).reshape(-1, 2).float())
        st.append(torch.full((gh * gw,), float(s), device=device))
    return torch.cat(xy), torch.cat(st)


def decode_boxes(raw_reg: torch.Tensor, grid_xy: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """[.., N, 4] raw (x, y, log w, log h) → cx, cy, w, h in input pixels (cell top-left, no +0.5)."""
    s = strides[:, None]
    cxy = (raw_reg[..., :2] + grid_xy) * s
    wh = torch.exp(raw_reg[..., 2:4].clamp(max=10.0)) * s
    return torch.cat([cxy, wh], -1)
