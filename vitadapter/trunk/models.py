"""Which timm models the trunk takes: checked by name before building, and by layout after.

The trunk needs a *plain* Vision Transformer: one patch embedding (``patch_embed``) onto one grid,
a sequence of ``blocks`` over ``[prefix tokens, patch tokens]`` and ``forward_intermediates``.
Before building, the entrypoint's model class (timm's registry knows the entrypoint and its
module; the entrypoint's return annotation names the class) tells CNNs and hierarchical models
apart, so they are refused with what to use instead rather than with timm's ``TypeError`` about
the ViT keyword arguments (``img_size``, ``dynamic_img_size``). After building, the layout is
checked (for hub names and classes the registry cannot tell).
"""
import difflib
import inspect
import sys
from typing import Optional, Tuple

import timm
import torch.nn as nn
from packaging.version import Version
from timm.models import model_entrypoint
from timm.models.vision_transformer import VisionTransformer

# The timm release from which forward_intermediates recomputes blocks under grad checkpointing.
GRAD_CHECKPOINTING_TIMM = (1, 0, 16)

FEATURES_ONLY_HINT = ("CNNs and hierarchical models (resnet, convnext, swin, ...) are already "
                      "multi-scale: use timm.create_model({name!r}, features_only=True) for them")


def timm_version() -> Tuple[int, ...]:
    """The installed timm's (major, minor, patch)."""
    return Version(timm.__version__).release[:3]


def check_model_name(model_name: str) -> None:
    """Raise a ValueError with close matches when timm does not know ``model_name``."""
    if is_hub_name(model_name):
        return
    arch = model_name.split('.')[0]  # drop a pretrained tag: 'vit_base_patch16_224.augreg_in21k'
    if timm.is_model(arch):
        return
    close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ''
    raise ValueError(f"unknown timm model {model_name!r}: {hint}"
                     f"(timm.list_models('*pattern*') lists the names timm knows)")


def is_hub_name(model_name: str) -> bool:
    return model_name.startswith(('hf-hub:', 'hf_hub:', 'local-dir:'))


def registered_class(model_name: str) -> Optional[type]:
    """The model class timm's entrypoint for ``model_name`` builds, when its return annotation
    names one (None for hub names and unannotated entrypoints)."""
    if is_hub_name(model_name):
        return None
    entrypoint = model_entrypoint(model_name.split('.')[0])
    annotation = inspect.signature(entrypoint).return_annotation
    if annotation is inspect.Signature.empty:
        return None
    if isinstance(annotation, str):  # postponed annotations
        annotation = getattr(sys.modules.get(entrypoint.__module__), annotation, None)
    return annotation if isinstance(annotation, type) else None


def check_model_class(model_name: str) -> None:
    """Refuse, before building, models whose class is not a plain ViT, saying why and what to use."""
    check_model_name(model_name)
    cls = registered_class(model_name)
    if cls is None:
        return
    where = f"{cls.__name__} in {cls.__module__}"
    if cls.__name__ == 'NaFlexVit':
        raise ValueError(
            f"timm model {model_name!r} ({where}) is a NaFlex ViT (SigLIP-2 NaFlex / NaViT): its "
            f"embedding module `embeds` patchifies variable-resolution, variable-aspect images into "
            f"padded token sequences with a patch-validity mask and resamples its position "
            f"embedding itself, so there is no fixed `patch_embed` grid whose maps and position "
            f"embedding the trunk can pad, interpolate and hook into (ViTAdapter). Use the "
            f"fixed-grid model of the same family instead, e.g. 'vit_base_patch16_siglip_224' "
            f"(or _256, _384, _512; SigLIP-2: 'vit_base_patch16_siglip_224.v2_webli')")
    params = inspect.signature(cls.__init__).parameters
    if not issubclass(cls, VisionTransformer) and 'img_size' not in params:
        raise ValueError(
            f"timm model {model_name!r} ({where}) is not a plain Vision Transformer (it has no "
            f"patch grid: its constructor takes no img_size); ViTPyramid and ViTAdapter need a ViT "
            f"such as vit_base_patch16_224, deit3_*, eva02_*, vit_*_dinov2*, vit_*_siglip*, beit*. "
            + FEATURES_ONLY_HINT.format(name=model_name))


def create_vit(model_name: str, pretrained: bool, **kwargs) -> Tuple[nn.Module, bool]:
    """Create the timm model with dynamic input sizes when it supports them.
    Returns (model, dynamic)."""
    check_model_class(model_name)
    try:
        return timm.create_model(model_name, pretrained=pretrained, dynamic_img_size=True, **kwargs), True
    except TypeError as err:
        if 'dynamic_img_size' not in str(err):
            raise
    return timm.create_model(model_name, pretrained=pretrained, **kwargs), False


def check_is_plain_vit(model: nn.Module, model_name: str) -> None:
    """The built model has forward_intermediates over a sequence of patch tokens."""
    if not hasattr(model, 'forward_intermediates'):
        raise ValueError(
            f"timm model {model_name!r} ({type(model).__name__}) has no forward_intermediates in "
            f"timm {timm.__version__}, which the trunk needs to read intermediate blocks; choose a "
            f"ViT family that has it (vit_*, deit3_*, eva02_*, vit_*_dinov2*, vit_*_siglip*, beit*)")
    missing = [a for a in ('patch_embed', 'blocks', 'num_prefix_tokens') if not hasattr(model, a)]
    if missing:
        raise ValueError(
            f"timm model {model_name!r} ({type(model).__name__} in {type(model).__module__}) is not "
            f"a plain Vision Transformer (no {', '.join(missing)}). "
            + FEATURES_ONLY_HINT.format(name=model_name))


def check_grad_checkpointing_support() -> None:
    """timm's forward_intermediates ignores grad checkpointing before 1.0.16 (blocks would be
    stored, silently): refuse it there."""
    if timm_version() < GRAD_CHECKPOINTING_TIMM:
        needed = '.'.join(map(str, GRAD_CHECKPOINTING_TIMM))
        raise ValueError(f"grad_checkpointing=True needs timm >= {needed}, whose "
                         f"forward_intermediates recomputes blocks; timm {timm.__version__} is "
                         f"installed (pip install 'timm>={needed}')")
