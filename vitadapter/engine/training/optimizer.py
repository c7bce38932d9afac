"""Layer-wise learning-rate decay for any timm ViT inside a vitadapter backbone (mmengine).

mmseg's own ``LayerDecayOptimizerConstructor`` knows only its own BEiT/ConvNeXt parameter names
and raises NotImplementedError for ViTs. This one asks each timm trunk for its layers with timm's
``group_matcher`` (the grouping timm's own ``param_groups_layer_decay`` uses), so every family
timm supports works, and follows the BEiT / MAE / ViT-Adapter convention:

* the trunk's patch embedding, position embedding and prefix tokens are layer 0, block ``i`` is
  layer ``i + 1``; with ``L`` blocks, layer ``l`` gets ``lr * layer_decay_rate ** (L + 1 - l)``;
* ``full_rate_blocks=N`` (EoMT's rule, tue-mps/eomt ``configure_optimizers``): the last N blocks
  (the query blocks) at the full ``lr`` and the decay counted from the last block, block ``i``
  before them at ``lr * layer_decay_rate ** (L - 1 - i)``, the stem as block 0;
* the final norm, the pyramid neck, the adapter and the heads get the full ``lr``;
* no weight decay on 1-D parameters (norms, biases, layer-scale gammas) nor on what the trunk
  names in ``no_weight_decay()`` (position embeddings, class/register/distillation tokens);
* ``paramwise_cfg.custom_keys`` as in mmengine (the longest key contained in a parameter's name
  wins): its ``lr_mult`` multiplies the layer-decay scale, its ``decay_mult`` the weight decay
  (Mask2Former's query and level embeddings: ``dict(lr_mult=1.0, decay_mult=0.0)``);
* under FSDP (:class:`~vitadapter.engine.training.fsdp.TrunkBlockFSDP`) the same groups: names are read
  without the wrappers' prefixes and dimensions from the unsharded shapes (sharded parameters are
  1-D views of their shards).

Config::

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
        constructor='ViTLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.65))
"""
from typing import Dict, List, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ...trunk import TimmViTTrunk
from .fsdp import unsharded_ndim, unwrapped_name


def layer_scale(layer: int, top: int, rate: float, full_rate_blocks: int = 0) -> float:
    """The learning-rate scale of trunk layer ``layer`` (0 = stem, i + 1 = block i, ``top`` = L + 1
    = the final norm): BEiT's ``rate ** (top - layer)``, or with ``full_rate_blocks`` = N > 0
    EoMT's: 1 for the last N blocks and the norm, ``rate ** (L - max(layer, 1))`` before them."""
    if not full_rate_blocks:
        return rate ** (top - layer)
    blocks = top - 1
    if layer > blocks - full_rate_blocks:
        return 1.0
    return rate ** (blocks - max(layer, 1))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """``paramwise_cfg=dict(layer_decay_rate=0.65)``; 1.0 disables the decay but keeps the
    weight-decay rules; ``full_rate_blocks=N``: EoMT's rule (see the module docstring). Every
    parameter group records ``lr_scale``, its ``param_names`` and whether it is the trunk's
    (``trunk``: EoMT's two-stage warm-up, ``TwoStageWarmupPolyLR``, tells them apart)."""

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        decay_rate = float(self.paramwise_cfg.get('layer_decay_rate', 1.0))
        if not 0 < decay_rate <= 1:
            raise ValueError(f"layer_decay_rate must be in (0, 1], got {decay_rate}")
        full_rate = int(self.paramwise_cfg.get('full_rate_blocks', 0))
        lr_scale: Dict[str, float] = {}
        no_decay = set()
        trunks = [(name, m) for name, m in module.named_modules() if isinstance(m, TimmViTTrunk)]
        if not trunks:
            raise ValueError("ViTLayerDecayOptimizerConstructor found no vitadapter trunk in the "
                             "model; use mmengine's default constructor for other backbones")
        for trunk_name, trunk in trunks:
            trunk_name = unwrapped_name(trunk_name + '.')[:-1]
            base = f"{trunk_name}." if trunk_name else ''
            ids, top = trunk.param_layer_ids()
            if not 0 <= full_rate <= top - 1:
                raise ValueError(f"full_rate_blocks={full_rate}: the trunk has {top - 1} blocks")
            for name, layer in ids.items():
                lr_scale[base + unwrapped_name(name)] = layer_scale(layer, top, decay_rate, full_rate)
            no_decay.update(base + n for n in trunk.no_weight_decay())

        custom_keys = dict(self.paramwise_cfg.get('custom_keys', {}))
        by_length = sorted(custom_keys, key=len, reverse=True)
        ndims = unsharded_ndim(module)
        groups: Dict[Tuple[float, float, bool], dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            name = unwrapped_name(name)
            in_trunk = name in lr_scale
            ndim = param.ndim if ndims is None else ndims[name]
            scale = lr_scale.get(name, 1.0)
            weight_decay = 0.0 if (ndim <= 1 or name in no_decay) else (self.base_wd or 0.0)
            key = next((k for k in by_length if k in prefix + name), None)
            if key is not None:
                scale *= float(custom_keys[key].get('lr_mult', 1.0))
                weight_decay *= float(custom_keys[key].get('decay_mult', 1.0))
            group = groups.setdefault((scale, weight_decay, in_trunk), dict(
                params=[], param_names=[], lr=self.base_lr * scale, lr_scale=scale,
                weight_decay=weight_decay, trunk=in_trunk))
            group['params'].append(param)
            group['param_names'].append(prefix + name)
        params.extend(groups[k] for k in sorted(groups, reverse=True))
        print_log(f"layer decay {decay_rate}: {len(groups)} parameter groups, lr scales from "
                  f"{min(k[0] for k in groups):.3g} to 1", logger='current')
