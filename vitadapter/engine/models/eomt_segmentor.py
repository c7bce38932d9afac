"""``EoMTSegmentor``: EoMT and PMT (:mod:`vitadapter.models`) as mmseg segmentors.

No backbone, neck or head to wire: the config names the network and the loss, nothing reads
``in_channels``::

    model = dict(
        type='EoMTSegmentor',
        data_preprocessor=...,
        network=dict(type='EoMT', model_name='vit_large_patch14_reg4_dinov2', num_classes=150,
                     num_queries=100, num_blocks=4, img_size=512, patch_size=16),
        loss=dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1, num_points=12544),
        test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
    custom_hooks = [dict(type='MaskAnnealingHook', starts=[...], ends=[...])]

Training: Mask2Former's matching and point-sampled losses on every prediction (the ``d{i}.``
keys are the intermediate ones). The random draws of a step (which queries drop their masks, the
loss's points) come from a generator seeded by the iteration and the process rank, so a resumed
run makes the draws of the uninterrupted one. Inference: mmseg's ``whole`` and ``slide`` modes
(inherited from mmseg's ``EncoderDecoder``) on the per-class scores of the final prediction.
"""
from typing import List, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS

from ...heads.mask2former import Mask2FormerLoss, semantic_targets
from ...models import EoMT, PMT

NETWORKS = {'EoMT': EoMT, 'PMT': PMT}
LOSS = dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1, num_points=12544, oversample_ratio=3.0,
            importance_sample_ratio=0.75)
ANNEALING_HOOK = 'MaskAnnealingHook'


def _loss_settings(given: Optional[dict]) -> dict:
    given = dict(given or {})
    unknown = set(given) - set(LOSS)
    if unknown:
        raise ValueError(f"EoMTSegmentor loss: unknown keys {sorted(unknown)}; it takes {sorted(LOSS)} "
                         f"(defaults {LOSS})")
    return {**LOSS, **given}


@MODELS.register_module()
class EoMTSegmentor(EncoderDecoder):
    """Args:
        network: ``dict(type='EoMT' or 'PMT', **its arguments)`` (:class:`vitadapter.models.EoMT`,
            :class:`vitadapter.models.PMT`).
        loss: cls, mask, dice (weights, also the matching costs'), no_object (its class weight),
            num_points, oversample_ratio, importance_sample_ratio (EoMT's: 2, 5, 5, 0.1, 12544, 3, 0.75).
        ignore_index: the label mmseg's data give ignored pixels (255).
        seed: the seed of the training draws (mixed with the iteration and the rank).
        train_cfg / test_cfg / data_preprocessor / init_cfg: mmseg's.

    The network is ``self.network`` (state-dict keys ``network.trunk.model.*``, ``network.queries``,
    ``network.head.*``, ...).
    """

    def __init__(self, network: dict, loss: Optional[dict] = None, ignore_index: int = 255,
                 seed: int = 0, train_cfg=None, test_cfg=None, data_preprocessor=None, init_cfg=None):
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        network = dict(network)
        kind = network.pop('type', 'EoMT')
        if kind not in NETWORKS:
            raise ValueError(f"EoMTSegmentor network type {kind!r}: choose one of {sorted(NETWORKS)}")
        self.network = NETWORKS[kind](**network)
        settings = _loss_settings(loss)
        self.criterion = Mask2FormerLoss(
            self.network.num_classes, class_weight=settings['cls'], mask_weight=settings['mask'],
            dice_weight=settings['dice'], no_object_weight=settings['no_object'],
            num_points=settings['num_points'], oversample_ratio=settings['oversample_ratio'],
            importance_sample_ratio=settings['importance_sample_ratio'])
        self.num_classes = self.out_channels = self.network.num_classes
        self.align_corners = False
        self.ignore_index, self.seed = ignore_index, seed
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.iteration: Optional[int] = None  # set by MaskAnnealingHook before every training step

    # ----------------------------------------------------------------------------- annealing
    def set_iteration(self, iteration: int, probabilities: List[float]) -> None:
        """Before training step ``iteration`` (0-based): the mask probabilities of that step."""
        self.iteration = int(iteration)
        self.network.set_mask_probabilities(probabilities)

    def _generator(self, device: torch.device, iteration: int) -> torch.Generator:
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and \
            dist.is_initialized() else (0, 1)
        return torch.Generator(device=device).manual_seed(
            (self.seed * 1_000_003 + iteration * world + rank) % (2 ** 63))

    # ----------------------------------------------------------------------------- mmseg API
    def extract_feat(self, inputs: torch.Tensor):
        """EoMT has no feature pyramid: the network's predictions (see :meth:`_forward`)."""
        return self.network(inputs)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """Images (B, 3, H, W) -> per-class scores (B, K, H, W) of the final prediction."""
        return self.network.semantic_segmentation(inputs, generator=self._generator(inputs.device, -1))

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """{'loss_cls', 'loss_mask', 'loss_dice'} of the final prediction, 'd{i}.loss_*' of the others."""
        if self.network.masked_attention and self.iteration is None:
            raise RuntimeError(
                f"EoMTSegmentor trains with masked attention whose probabilities follow the "
                f"iteration, but nothing told it the iteration: add custom_hooks=[dict(type="
                f"'{ANNEALING_HOOK}', starts=[...], ends=[...])] to the config (or build the network "
                f"with masked_attention=False)")
        generator = self._generator(inputs.device, self.iteration or 0)
        self.criterion.generator = generator
        out = self.network(inputs, generator=generator)
        padded = self.network.padded_size(inputs.shape[-2:])
        targets = []
        for sample in data_samples:
            labels, masks = semantic_targets(sample.gt_sem_seg.data, self.ignore_index)
            pad = (0, padded[1] - masks.shape[-1], 0, padded[0] - masks.shape[-2])
            targets.append((labels, F.pad(masks, pad) if any(pad) else masks))
        return self.criterion(out.class_logits, out.mask_logits, targets)

    def _forward(self, inputs: torch.Tensor, data_samples=None):
        """The network's raw predictions (``MaskPredictions``: mask and class logits per prediction)."""
        return self.network(inputs)
