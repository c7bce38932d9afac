"""Hungarian matching of predicted masks to ground-truth masks (mmdet's ``HungarianAssigner``
with ``ClassificationCost``, ``CrossEntropyLossCost`` and ``DiceCost``), on sampled points.

The cost of giving query q the ground truth g is
``w_cls * -p_q(class_g) + w_mask * BCE(mask_q, mask_g) + w_dice * dice(sigmoid(mask_q), mask_g)``,
the BCE averaged over the points and the dice ``1 - (2 sum p t + eps) / (sum p + sum t + eps)``.
The assignment minimising the total is computed by ``scipy.optimize.linear_sum_assignment``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def match_cost(cls_logits: torch.Tensor, mask_logits: torch.Tensor, gt_labels: torch.Tensor,
               gt_masks: torch.Tensor, class_weight: float = 2.0, mask_weight: float = 5.0,
               dice_weight: float = 5.0, dice_eps: float = 1.0) -> torch.Tensor:
    """cls_logits (Q, K + 1), mask_logits (Q, P) at P points, gt_labels (G,) long, gt_masks (G, P)
    in [0, 1] at the same points -> cost (Q, G)."""
    gt_masks = gt_masks.to(mask_logits.dtype)
    cost_cls = -cls_logits.softmax(-1)[:, gt_labels]
    pos = F.binary_cross_entropy_with_logits(mask_logits, torch.ones_like(mask_logits), reduction='none')
    neg = F.binary_cross_entropy_with_logits(mask_logits, torch.zeros_like(mask_logits), reduction='none')
    cost_mask = (pos @ gt_masks.T + neg @ (1 - gt_masks).T) / mask_logits.shape[1]
    probs = mask_logits.sigmoid()
    numerator = 2 * probs @ gt_masks.T
    denominator = probs.sum(-1)[:, None] + gt_masks.sum(-1)[None, :]
    cost_dice = 1 - (numerator + dice_eps) / (denominator + dice_eps)
    return class_weight * cost_cls + mask_weight * cost_mask + dice_weight * cost_dice


def hungarian_match(cost: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """cost (Q, G) -> (query indices, gt indices), each (min(Q, G),) long on cost's device, query
    indices increasing: the one-to-one assignment of least total cost."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as e:
        raise ImportError("Mask2Former's Hungarian matching needs scipy: pip install scipy") from e
    rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
    device = cost.device
    return (torch.as_tensor(rows, dtype=torch.long, device=device),
            torch.as_tensor(cols, dtype=torch.long, device=device))
