"""YOLOX loss: SimOTA label assignment, IoU loss on boxes, BCE on objectness and classes.

Follows Megvii YOLOX (Apache-2.0) closely, written afresh without torchvision:
  candidates  = anchors whose centre ((g + 0.5) * s) lies in a gt box or within 2.5 strides of its centre
  cost        = BCE(sqrt(cls * obj), 1) + 3 * -log(IoU) + 1e5 * (not in box and centre)
  dynamic k   = clamp(sum of the top-10 IoUs, min 1) lowest-cost anchors per gt; an anchor wanted by
                several gts goes to the cheapest
  loss        = (5 * (1 - IoU^2) + BCE(obj) + BCE(cls, IoU-weighted target)) / num_fg
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import decode_boxes, grids


def box_iou_cxcywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of [M, 4] and [N, 4] boxes (cx, cy, w, h) → [M, N]."""
    a1, a2 = a[:, None, :2] - a[:, None, 2:] / 2, a[:, None, :2] + a[:, None, 2:] / 2
    b1, b2 = b[None, :, :2] - b[None, :, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2
    inter = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(min=0).prod(-1)
    return inter / (a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter + 1e-9)


def iou_aligned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of [N, 4] cxcywh boxes."""
    a1, a2 = a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2
    b1, b2 = b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    inter = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(min=0).prod(-1)
    return inter / (a[:, 2:].prod(-1) + b[:, 2:].prod(-1) - inter + 1e-9)


class YoloxLoss:
    def __init__(self, num_classes: int, center_radius: float = 2.5):
        self.nc = num_classes
        self.radius = center_radius
        self._grid_cache = {}

    def _grids(self, h, w, device):
        key = (h, w, str(device))
        if key not in self._grid_cache:
            self._grid_cache[key] = grids(h, w, device)
        return self._grid_cache[key]

    @torch.no_grad()
    def assign(self, pboxes, pobj, pcls, gt_boxes, gt_cls, centers, strides):
        """SimOTA for one image. pboxes [N, 4] cxcywh px, pobj [N] / pcls [N, C] logits,
        gt_boxes [G, 4] cxcywh, gt_cls [G] long. Returns (fg mask [N], matched gt index [num_fg], IoU [num_fg])."""
        N = pboxes.shape[0]
        g1 = gt_boxes[:, :2] - gt_boxes[:, 2:] / 2
        g2 = gt_boxes[:, :2] + gt_boxes[:, 2:] / 2
        c = centers[None]  # [1, N, 2]
        in_box = ((c > g1[:, None]) & (c < g2[:, None])).all(-1)  # [G, N]
        r = self.radius * strides[None, :, None]
        in_ctr = ((c > gt_boxes[:, None, :2] - r) & (c < gt_boxes[:, None, :2] + r)).all(-1)
        cand = (in_box | in_ctr).any(0)  # [N]
        if cand.sum() == 0:
            return torch.zeros(N, dtype=torch.bool), None, None
        box_and_ctr = (in_box & in_ctr)[:, cand]  # [G, n]
        ious = box_iou_cxcywh(gt_boxes, pboxes[cand])  # [G, n]
        iou_cost = -torch.log(ious + 1e-8)
        p = (pcls[cand].float().sigmoid() * pobj[cand, None].float().sigmoid()).sqrt()  # [n, C]
        tgt = F.one_hot(gt_cls, self.nc).float()  # [G, C]
        cls_cost = F.binary_cross_entropy(p[None].expand(len(gt_cls), -1, -1).clamp(1e-6, 1 - 1e-6),
                                          tgt[:, None].expand(-1, p.shape[0], -1), reduction="none").sum(-1)
        cost = cls_cost + 3.0 * iou_cost + 1e5 * (~box_and_ctr).float()
        # dynamic k
        topk = min(10, ious.shape[1])
        dyn_k = ious.topk(topk, 1).values.sum(1).int().clamp(min=1)
        match = torch.zeros_like(cost)
        for g in range(len(gt_cls)):
            idx = cost[g].topk(int(dyn_k[g]), largest=False).indices
            match[g, idx] = 1.0
        multi = match.sum(0) > 1
        if multi.any():
            best = cost[:, multi].argmin(0)
            match[:, multi] = 0.0
            match[best, multi.nonzero().squeeze(1)] = 1.0
        fg_c = match.sum(0) > 0  # over candidates
        gt_idx = match[:, fg_c].argmax(0)
        fg_iou = (match * ious).sum(0)[fg_c]
        fg = torch.zeros(N, dtype=torch.bool)
        fg[cand.nonzero().squeeze(1)[fg_c]] = True
        return fg, gt_idx, fg_iou

    def __call__(self, outs, targets, imgsz):
        """outs: per-level [B, 5+C, H, W]; targets: list of [K, 5] (class, x1, y1, x2, y2 px) arrays."""
        B = outs[0].shape[0]
        device = outs[0].device
        raw = torch.cat([o.flatten(2) for o in outs], 2).permute(0, 2, 1)  # [B, N, 5+C]
        gxy, strides = self._grids(imgsz, imgsz, device)
        pboxes = decode_boxes(raw[..., :4], gxy, strides)
        centers = (gxy + 0.5) * strides[:, None]
        obj_t = torch.zeros(raw.shape[:2], device=device)
        fg_all, box_t, cls_t, fg_box = [], [], [], []
        num_fg = 0
        for i in range(B):
            t = torch.as_tensor(targets[i], dtype=torch.float32, device=device).reshape(-1, 5)
            if len(t) == 0:
                fg_all.append(torch.zeros(raw.shape[1], dtype=torch.bool))
                continue
            gt = torch.cat([(t[:, 1:3] + t[:, 3:5]) / 2, t[:, 3:5] - t[:, 1:3]], 1)
            gcls = t[:, 0].long()
            fg, gidx, fiou = self.assign(pboxes[i].detach(), raw[i, :, 4].detach(), raw[i, :, 5:].detach(), gt, gcls, centers, strides)
            fg_all.append(fg)
            if gidx is None:
                continue
            num_fg += int(fg.sum())
            obj_t[i, fg] = 1.0
            box_t.append(gt[gidx])
            cls_t.append(F.one_hot(gcls[gidx], self.nc).float() * fiou[:, None])
            fg_box.append(pboxes[i][fg])
        fg_mask = torch.stack(fg_all)
        nf = max(num_fg, 1)
        loss_obj = F.binary_cross_entropy_with_logits(raw[..., 4], obj_t, reduction="sum") / nf
        if num_fg:
            pb = torch.cat(fg_box)
            tb = torch.cat(box_t)
            iou = iou_aligned(pb, tb)
            loss_iou = (1 - iou ** 2).sum() / nf
            loss_cls = F.binary_cross_entropy_with_logits(raw[..., 5:][fg_mask], torch.cat(cls_t), reduction="sum") / nf
        else:
            loss_iou = raw.sum() * 0.0
            loss_cls = raw.sum() * 0.0
        total = 5.0 * loss_iou + loss_obj + loss_cls
        return total, dict(iou=loss_iou.item(), obj=loss_obj.item(), cls=loss_cls.item(), fg=num_fg / B)
