"""Mask2Former's training loss (mmdet's ``MaskFormerHead.loss_by_feat`` with Mask2Former's
point-sampled mask losses), for every decoder layer's predictions (deep supervision).

Per layer: every image's queries are matched to its ground-truth masks (:mod:`.matching`, costs at
``num_points`` uniform random points); then

* ``loss_cls``: cross-entropy of every query against its matched class or "no object" (class K),
  the no-object class weighted ``no_object_weight``, averaged by the summed class weights;
* ``loss_mask``: binary cross-entropy of the matched masks at ``num_points`` points chosen by
  uncertainty (:func:`.point_sampling.uncertain_point_coords`), averaged over masks x points;
* ``loss_dice``: ``1 - (2 sum p t + 1) / (sum p + sum t + 1)`` at the same points, averaged over masks.

The number of masks is the sum over images of max(matches, 1), averaged over processes when
torch.distributed is initialised (each process then normalises by the global mean). The divisions
add float32's epsilon to the denominators as mmdet does, and the random draws are made in mmdet's
order (per layer: one set of matching points per image, then the loss points of all matched masks),
so with the same RNG state both compute the same numbers.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .matching import hungarian_match, match_cost
from .point_sampling import point_sample, uncertain_point_coords

EPS32 = torch.finfo(torch.float32).eps
Target = Tuple[torch.Tensor, torch.Tensor]  # labels (G,) long, masks (G, H, W) bool/0-1


def _mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
        value = value / dist.get_world_size()
    return value


class Mask2FormerLoss:
    """Args:
        num_classes: K (class logits have K + 1 entries, the last one "no object").
        class_weight, mask_weight, dice_weight: loss weights, also the matching cost weights (2, 5, 5).
        no_object_weight: cross-entropy weight of the no-object class (0.1).
        num_points, oversample_ratio, importance_sample_ratio: point sampling (12544, 3.0, 0.75).
        generator: a torch.Generator for the random points (default: torch's global RNG).

    Call: cls_preds [(B, Q, K + 1)] and mask_preds [(B, Q, h, w)], one per decoder output (the
    last is the final prediction), targets [(labels (G_b,), masks (G_b, H, W))] per image ->
    {'loss_cls', 'loss_mask', 'loss_dice'} of the last output and 'd{i}.loss_*' of the others.
    """

    def __init__(self, num_classes: int, class_weight: float = 2.0, mask_weight: float = 5.0,
                 dice_weight: float = 5.0, no_object_weight: float = 0.1, num_points: int = 12544,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75,
                 generator: Optional[torch.Generator] = None):
        self.num_classes = num_classes
        self.class_weight, self.mask_weight, self.dice_weight = class_weight, mask_weight, dice_weight
        self.no_object_weight = no_object_weight
        self.num_points, self.oversample_ratio = num_points, oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.generator = generator

    def __call__(self, cls_preds: Sequence[torch.Tensor], mask_preds: Sequence[torch.Tensor],
                 targets: Sequence[Target]) -> Dict[str, torch.Tensor]:
        if len(cls_preds) != len(mask_preds) or not cls_preds:
            raise ValueError(f"Mask2Former loss: {len(cls_preds)} class and {len(mask_preds)} mask "
                             f"predictions; give one of each per decoder output")
        losses = {}
        for i, (cls_logits, mask_logits) in enumerate(zip(cls_preds, mask_preds)):
            prefix = '' if i == len(cls_preds) - 1 else f'd{i}.'
            values = self.layer_loss(cls_logits, mask_logits, targets)
            losses.update({f'{prefix}{k}': v for k, v in zip(('loss_cls', 'loss_mask', 'loss_dice'), values)})
        return losses

    def match(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor,
              target: Target) -> Tuple[torch.Tensor, torch.Tensor]:
        """One image: cls_logits (Q, K + 1), mask_logits (Q, h, w), target -> (query indices,
        gt indices), by the matching cost at ``num_points`` uniform random points."""
        labels, masks = target
        dtype = torch.promote_types(mask_logits.dtype, torch.float32)
        points = torch.rand((1, self.num_points, 2), device=mask_logits.device, dtype=dtype,
                            generator=self.generator)
        if labels.numel() == 0:
            empty = labels.new_zeros(0, dtype=torch.long)
            return empty, empty
        with torch.no_grad():
            pred_points = point_sample(mask_logits[:, None], points.expand(mask_logits.shape[0], -1, -1))[:, 0]
            gt_points = point_sample(masks[:, None], points.expand(masks.shape[0], -1, -1))[:, 0]
            cost = match_cost(cls_logits, pred_points, labels, gt_points, self.class_weight,
                              self.mask_weight, self.dice_weight)
        return hungarian_match(cost)

    def layer_loss(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                   targets: Sequence[Target]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """cls_logits (B, Q, K + 1), mask_logits (B, Q, h, w) -> (loss_cls, loss_mask, loss_dice)."""
        b, q, k1 = cls_logits.shape
        if k1 != self.num_classes + 1 or len(targets) != b:
            raise ValueError(f"Mask2Former loss: class logits {tuple(cls_logits.shape)} for "
                             f"{self.num_classes} classes + no object and {len(targets)} targets")
        labels = torch.full((b, q), self.num_classes, dtype=torch.long, device=cls_logits.device)
        matched_preds, matched_masks, num_masks = [], [], 0
        for i, target in enumerate(targets):
            query_idx, gt_idx = self.match(cls_logits[i], mask_logits[i], target)
            labels[i, query_idx] = target[0][gt_idx]
            matched_preds.append(mask_logits[i, query_idx])
            matched_masks.append(target[1][gt_idx])
            num_masks += max(len(query_idx), 1)
        weights = cls_logits.new_ones(self.num_classes + 1)
        weights[-1] = self.no_object_weight
        labels = labels.flatten()
        loss_cls = F.cross_entropy(cls_logits.flatten(0, 1), labels, weight=weights, reduction='none')
        loss_cls = self.class_weight * (loss_cls.sum() / (weights[labels].sum() + EPS32))
        num_masks = _mean_over_processes(cls_logits.new_tensor([num_masks])).clamp(min=1)[0]
        preds = torch.cat(matched_preds)  # (M, h, w)
        if preds.shape[0] == 0:  # nothing to match in the whole batch
            return loss_cls, preds.sum(), preds.sum()
        gts = torch.cat(matched_masks)
        with torch.no_grad():
            points = uncertain_point_coords(preds, self.num_points, self.oversample_ratio,
                                            self.importance_sample_ratio, self.generator)
            gt_points = point_sample(gts[:, None], points)[:, 0]
        pred_points = point_sample(preds[:, None], points)[:, 0]  # (M, P)
        loss_mask = F.binary_cross_entropy_with_logits(pred_points, gt_points, reduction='none')
        loss_mask = self.mask_weight * (loss_mask.sum() / (num_masks * self.num_points + EPS32))
        probs = pred_points.sigmoid()
        dice = 1 - (2 * (probs * gt_points).sum(1) + 1) / (probs.sum(1) + gt_points.sum(1) + 1)
        loss_dice = self.dice_weight * (dice.sum() / (num_masks + EPS32))
        return loss_cls, loss_mask, loss_dice
