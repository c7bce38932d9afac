"""TimmViTTrunk: a timm Vision Transformer that returns the token maps of chosen blocks.

It owns everything about the ViT itself: building it (with clear errors for unknown names and
non-ViT models, see :mod:`vitadapter.trunk.models`), loading local weights, choosing blocks
(``out_indices``), padding inputs of any size, splitting the prefix tokens off, mapping the
patch grid onto the pyramid's reference stride (patch 14 -> stride 16, see
:mod:`vitadapter.trunk.grid`), freezing and grad checkpointing.
"""
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint
from timm.layers import PatchDropout
from timm.models.beit import Beit
from timm.models.eva import Eva
from timm.models.vision_transformer import VisionTransformer

from ..geometry import grid_size, pad_to_multiple, resample_to_grid
from ..weights.interpolation import interpolate_pos_grid
from ..weights.loading import LoadReport, load_checkpoint, pretrained_report, pruned_key_prefixes
from .grid import GRID_MAPPINGS, resize_input_to_grid
from .models import check_grad_checkpointing_support, check_is_plain_vit, create_vit
from .pos_embed import set_pos_embed_interpolation, supports_pos_embed_interpolation
from .prefix import ClassTokenReadout

IndicesT = Union[int, Sequence[int]]

# The classes whose token embedding :meth:`TimmViTTrunk.embed` reproduces (exact classes).
TOKEN_HOOK_CLASSES = (VisionTransformer, Eva, Beit)


class TrunkOutput(NamedTuple):
    """maps: (B, C, ceil(H/stride), ceil(W/stride)) per chosen block, on the reference stride grid.
    class_tokens: (B, C) per chosen block (None if the model has no class token).
    register_tokens: (B, R, C) per chosen block (None if the model has no registers)."""
    maps: List[torch.Tensor]
    class_tokens: List[Optional[torch.Tensor]]
    register_tokens: List[Optional[torch.Tensor]]


class TokenSequence(NamedTuple):
    """What :meth:`TimmViTTrunk.embed` returns.

    tokens: (B, P + h*w, C), the P prefix tokens (class, registers) first, then the patch tokens
        row by row. grid: (h, w), the patch grid. num_prefix_tokens: P.
    block_kwargs: what every block also takes (EVA's rotary embedding, BEiT's shared relative
        position bias); pass it on to :meth:`TimmViTTrunk.run_blocks`.
    """
    tokens: torch.Tensor
    grid: Tuple[int, int]
    num_prefix_tokens: int
    block_kwargs: Dict[str, Any]


def evenly_spaced_blocks(num_blocks: int, count: int) -> List[int]:
    """The last block of each of ``count`` equal groups: 12 blocks, 4 outputs -> [2, 5, 8, 11]."""
    return [num_blocks * (i + 1) // count - 1 for i in range(min(count, num_blocks))]


def resolve_out_indices(out_indices: Optional[IndicesT], num_blocks: int,
                        default_count: int = 4) -> List[int]:
    """timm's convention -> sorted absolute block indices. An int N means the last N blocks;
    a sequence holds block indices, negatives counting from the end; None means
    ``default_count`` evenly spaced blocks ending with the last one."""
    if out_indices is None:
        return evenly_spaced_blocks(num_blocks, default_count)
    if isinstance(out_indices, bool) or not isinstance(out_indices, (int, Sequence)):
        raise TypeError(f"out_indices must be an int (last N blocks) or a sequence of block "
                        f"indices, got {out_indices!r}")
    if isinstance(out_indices, int):
        if not 0 < out_indices <= num_blocks:
            raise ValueError(f"out_indices={out_indices} asks for the last {out_indices} blocks but "
                             f"the model has {num_blocks} (use 1 to {num_blocks})")
        return list(range(num_blocks - out_indices, num_blocks))
    if len(out_indices) == 0:
        raise ValueError("out_indices is empty: choose at least one block")
    resolved = []
    for i in out_indices:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"out_indices must hold ints, got {i!r} in {tuple(out_indices)}")
        if not -num_blocks <= i < num_blocks:
            raise ValueError(f"out_indices {tuple(out_indices)}: block {i} is out of range; the model "
                             f"has {num_blocks} blocks (indices 0 to {num_blocks - 1}, or -{num_blocks} "
                             f"to -1 from the end)")
        resolved.append(i % num_blocks)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"out_indices {tuple(out_indices)} names the same block twice "
                         f"(as absolute indices: {resolved})")
    if resolved != sorted(resolved):
        raise ValueError(f"out_indices {tuple(out_indices)} must go from shallow to deep blocks "
                         f"(as absolute indices: {resolved})")
    return resolved


class TimmViTTrunk(nn.Module):
    """A timm ViT returning maps of chosen blocks on a fixed-stride grid.

    Args:
        model_name: any timm ViT name (with an optional pretrained tag).
        out_indices: blocks to return (int N = last N blocks; negatives count from the end;
            None = ``default_num_outputs`` evenly spaced blocks, e.g. (2, 5, 8, 11) of 12).
        pretrained: load timm's pretrained weights (needs the hub or timm's offline cache);
            ``load_report`` says from where.
        checkpoint: local weights in any supported layout (timm, official DINOv2/DINOv3, Hugging
            Face ViT/Dinov2/DINOv3, mmseg/mmpretrain, MAE, BEiT; see :mod:`vitadapter.weights`):
            a .pth/.bin/.safetensors file or a Hugging Face model folder. The layout is detected.
        img_size: the size the position embeddings are stored for (any input size still works).
        norm: apply the trunk's final norm to every returned block (DINOv2 style).
        prefix_tokens: class token readout: 'ignore', 'add' or 'project'.
        stride: the stride of the returned maps (16 for 4/8/16/32 pyramids); None = the patch size,
            i.e. timm's own token maps, unresampled.
        grid_mapping: 'maps' or 'input', how a patch size != stride is mapped (see grid.py).
        frozen_stages: -1 freezes nothing; 0 the patch embedding and tokens; n > 0 also blocks[:n].
        freeze_trunk: freeze the whole ViT (linear probing); it also stays in eval mode.
        grad_checkpointing: recompute blocks in the backward pass to save memory.
        strict_load: raise (the default) when the checkpoint leaves tensors the trunk uses as
            initialised; False loads what fits (partial loading on purpose; see ``load_report``).
        pos_embed_interp: how position embeddings are interpolated for other input sizes:
            'timm' (bicubic, antialias), 'bicubic' (no antialias: HF ViT/Dinov2, mmseg, mmpretrain)
            or 'dinov2' (official DINOv2). None: as the checkpoint's source does, timm's without one.
        model_kwargs: passed to ``timm.create_model`` (drop_path_rate, ...).

    Input (B, 3, H, W), any H and W. Output: :class:`TrunkOutput`.
    """

    def __init__(self, model_name: str, out_indices: Optional[IndicesT] = None,
                 default_num_outputs: int = 4, pretrained: bool = False,
                 checkpoint: Optional[str] = None, img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 norm: bool = False, prefix_tokens: str = 'ignore', stride: Optional[int] = None,
                 grid_mapping: str = 'maps', frozen_stages: int = -1, freeze_trunk: bool = False,
                 grad_checkpointing: bool = False, strict_load: bool = True,
                 pos_embed_interp: Optional[str] = None, **model_kwargs):
        super().__init__()
        if grid_mapping not in GRID_MAPPINGS:
            raise ValueError(f"grid_mapping={grid_mapping!r} is not one of {GRID_MAPPINGS}")
        if img_size is not None:
            model_kwargs['img_size'] = img_size
        self.model_name = model_name
        self.model, self.dynamic_size = create_vit(model_name, pretrained, num_classes=0, **model_kwargs)
        check_is_plain_vit(self.model, model_name)
        self.num_blocks = len(self.model.blocks)
        self.block_indices = resolve_out_indices(out_indices, self.num_blocks, default_num_outputs)
        self.load_report: Optional[LoadReport] = pretrained_report(self.model) if pretrained else None
        if checkpoint is not None:
            self.load_report = load_checkpoint(  # what is pruned below may be absent
                self.model, checkpoint, strict=strict_load, pos_embed_interp=pos_embed_interp,
                optional=pruned_key_prefixes(self.num_blocks, max(self.block_indices), prune_norm=not norm))
        self.pos_embed_interp = self._choose_pos_embed_interp(pos_embed_interp)
        set_pos_embed_interpolation(self.model, self.pos_embed_interp)

        # Drop the blocks after the last one used, the classifier and, unless used, the final norm:
        # no computation is wasted and DDP sees no unused parameters.
        self.model.prune_intermediate_layers(self.block_indices, prune_norm=not norm, prune_head=True)

        self.embed_dim = int(self.model.embed_dim)
        self.patch_size = tuple(self.model.patch_embed.patch_size)
        self.stride = self.patch_size if stride is None else (stride, stride)
        self.grid_mapping = grid_mapping
        self.norm = norm
        self.num_prefix_tokens = int(self.model.num_prefix_tokens)
        self.has_class_token = getattr(self.model, 'cls_token', None) is not None
        # timm's VisionTransformer records num_reg_tokens; Eva (EVA-02, DINOv3) only has reg_token
        reg_token = getattr(self.model, 'reg_token', None)
        self.num_register_tokens = int(reg_token.shape[1]) if reg_token is not None else \
            int(getattr(self.model, 'num_reg_tokens', 0) or 0)
        if prefix_tokens != 'ignore' and not self.has_class_token:
            raise ValueError(f"prefix_tokens={prefix_tokens!r} needs a class token, but {model_name!r} "
                             f"has none; use prefix_tokens='ignore'")
        self.readout = ClassTokenReadout(prefix_tokens, self.embed_dim, len(self.block_indices))

        self.prefix_tokens_dropped = False
        self.frozen_stages = frozen_stages
        self.freeze_trunk = freeze_trunk
        self._freeze()
        if grad_checkpointing:
            self.model.set_grad_checkpointing(True)

    def _choose_pos_embed_interp(self, requested: Optional[str]) -> str:
        """The explicit choice, else the checkpoint source's rule where the model can follow it."""
        if requested is not None:
            return requested
        source_rule = self.load_report.pos_embed_interp if self.load_report is not None else 'timm'
        if not supports_pos_embed_interpolation(self.model):
            source_rule = 'timm'
            if self.load_report is not None:
                self.load_report.pos_embed_interp = 'timm'
        return source_rule

    # ----------------------------------------------------------------------------- freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.freeze_trunk:
            return [self.model]
        if self.frozen_stages < 0:
            return []
        if self.frozen_stages > self.num_blocks:
            raise ValueError(f"frozen_stages={self.frozen_stages} but the model has {self.num_blocks} "
                             f"blocks (use -1 to {self.num_blocks}, or freeze_trunk=True)")
        stem = [m for m in (self.model.patch_embed, getattr(self.model, 'norm_pre', None)) if m is not None]
        return stem + list(self.model.blocks[:self.frozen_stages])

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for p in module.parameters():
                p.requires_grad = False
        if self.freeze_trunk or self.frozen_stages >= 0:
            for name in ('cls_token', 'reg_token', 'pos_embed', 'dist_token'):
                p = getattr(self.model, name, None)
                if isinstance(p, nn.Parameter):
                    p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._frozen_modules():  # frozen parts keep eval behaviour (no drop path)
            module.eval()
        return self

    # ----------------------------------------------------------------------------- forward
    def output_grid(self, image_size: Sequence[int]) -> Tuple[int, int]:
        """Size of the returned maps for an input of ``image_size`` (H, W)."""
        return grid_size(image_size, self.stride)

    def _prepare_input(self, x: torch.Tensor, native_grid: bool = False) -> torch.Tensor:
        if self.grid_mapping == 'input' and self.patch_size != self.stride and not native_grid:
            x = resize_input_to_grid(x, self.patch_size, self.stride)
        else:
            x = pad_to_multiple(x, self.patch_size)
        if not self.dynamic_size:
            expected = tuple(self.model.patch_embed.img_size)
            if tuple(x.shape[-2:]) != expected:
                raise ValueError(
                    f"{self.model_name!r} has a fixed input size {expected} (timm gives it no dynamic "
                    f"size support) but got {tuple(x.shape[-2:])} after padding; set img_size to the "
                    f"crop size and run inference with mode='slide' at that crop")
        return x

    def _check_images(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.model.patch_embed.proj.in_channels:
            raise ValueError(f"expected images (B, {self.model.patch_embed.proj.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> TrunkOutput:
        if self.prefix_tokens_dropped:
            raise RuntimeError("this trunk's class/register tokens were removed with "
                               "drop_prefix_tokens(); it runs through embed() and run_blocks() only")
        self._check_images(x)
        if getattr(self.model, 'grad_checkpointing', False) and torch.is_grad_enabled():
            check_grad_checkpointing_support()
        out_grid = self.output_grid(x.shape[-2:])
        # return_prefix_tokens only with prefix tokens (timm < 1.0.15 fails on it without any)
        blocks = self.model.forward_intermediates(
            self._prepare_input(x), indices=self.block_indices,
            return_prefix_tokens=self.num_prefix_tokens > 0,
            norm=self.norm, stop_early=True, output_fmt='NCHW', intermediates_only=True)
        if self.num_prefix_tokens:
            maps = [m for m, _ in blocks]
            prefixes = [p for _, p in blocks]
        else:
            maps, prefixes = list(blocks), [None] * len(blocks)
        class_tokens = [p[:, 0] if self.has_class_token else None for p in prefixes]
        first_reg = self.num_prefix_tokens - self.num_register_tokens
        register_tokens = [p[:, first_reg:] if self.num_register_tokens else None for p in prefixes]
        maps = self.readout(maps, class_tokens)
        src_stride = self.stride if self.grid_mapping == 'input' else self.patch_size
        maps = [resample_to_grid(m, src_stride, self.stride, out_grid) for m in maps]
        return TrunkOutput(maps, class_tokens, register_tokens)

    # ----------------------------------------------------------------------------- token hooks
    # Backbones that run their own modules between the ViT's blocks (ViTAdapter) use
    # embed() -> run_blocks(0, a) -> ... -> run_blocks(b, n) instead of forward(). Running every
    # block in one call gives exactly the tokens timm's forward_intermediates computes.

    def check_token_hooks(self) -> None:
        """Raise a ValueError unless :meth:`embed` and :meth:`run_blocks` reproduce this model's
        own forward pass: timm's VisionTransformer, Eva and Beit exactly (subclasses such as
        DeiT's distilled ViT add tokens their own way), without per-block mixed rotary
        embeddings or patch dropout."""
        model = self.model
        if type(model) not in TOKEN_HOOK_CLASSES:
            raise ValueError(
                f"{self.model_name!r} ({type(model).__name__}) embeds its tokens its own way; the "
                f"token hooks (embed/run_blocks, used by ViTAdapter) support timm's "
                f"VisionTransformer (ViT, DeiT, DeiT-3, AugReg, DINOv2, CLIP, SigLIP), Eva and Beit")
        if getattr(model, 'rope_mixed', False):
            raise ValueError(f"{self.model_name!r} uses per-block mixed rotary embeddings, which the "
                             f"token hooks do not support; choose an axial-rope or absolute-position ViT")
        if isinstance(getattr(model, 'patch_drop', None), PatchDropout):
            raise ValueError(f"{self.model_name!r} was built with patch dropout, which removes tokens "
                             f"from the grid; build it with patch_drop_rate=0")

    def drop_prefix_tokens(self) -> None:
        """Remove the class and register tokens (their parameters too): :meth:`embed` then returns
        the patch tokens only, each with its position embedding, as the official ViT-Adapter,
        which never uses the class token. :meth:`forward` is unavailable afterwards."""
        self.check_token_hooks()
        if isinstance(self.model, Beit):
            raise ValueError(f"{self.model_name!r} (BEiT) needs its class token in every block; "
                             f"keep it (ViTAdapter(with_cls_token=True))")
        for name in ('cls_token', 'reg_token'):
            if getattr(self.model, name, None) is not None:
                delattr(self.model, name)
                setattr(self.model, name, None)
        for module in self.model.blocks.modules():  # EVA's attention skips rope on prefix tokens
            if isinstance(getattr(module, 'num_prefix_tokens', None), int):
                module.num_prefix_tokens = 0
        self.prefix_tokens_dropped = True

    @property
    def token_prefix_count(self) -> int:
        """How many prefix tokens :meth:`embed` puts before the patch tokens."""
        return 0 if self.prefix_tokens_dropped else self.num_prefix_tokens

    def _position_embedding(self, grid: Tuple[int, int], rule: str) -> Optional[torch.Tensor]:
        """The absolute position embedding interpolated to ``grid`` with ``rule`` (see
        :mod:`vitadapter.weights.interpolation`): (1, P_pos + h*w, C), P_pos = the prefix positions
        it stores (0 when the model adds it to patches only)."""
        model = self.model
        if getattr(model, 'pos_embed', None) is None:
            return None
        stored_prefix = 0 if getattr(model, 'no_embed_class', False) else self.num_prefix_tokens
        patches = interpolate_pos_grid(model.pos_embed[:, stored_prefix:], model.patch_embed.grid_size,
                                       grid, rule)
        return torch.cat([model.pos_embed[:, :stored_prefix], patches], dim=1) if stored_prefix else patches

    def embed(self, x: torch.Tensor, pos_embed_interp: Optional[str] = None) -> TokenSequence:
        """Images (B, 3, H, W), any size (padded to whole patches) -> :class:`TokenSequence`:
        patch embedding, prefix tokens, position embedding, pre-norm; the tokens the first block
        sees. ``pos_embed_interp``: how the position embedding is interpolated to the grid
        ('timm', 'bicubic', 'dinov2'); None: the trunk's own rule (``self.pos_embed_interp``)."""
        self.check_token_hooks()
        self._check_images(x)
        model = self.model
        x = model.patch_embed(self._prepare_input(x, native_grid=True))
        if x.ndim == 4:  # NHWC from dynamic-size models
            grid = (x.shape[1], x.shape[2])  # ints (symbolic under dynamic-shape tracing)
            x = x.flatten(1, 2)
        else:
            grid = tuple(int(g) for g in model.patch_embed.grid_size)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (model.cls_token, getattr(model, 'reg_token', None))
                  if t is not None]
        pos = self._position_embedding(grid, pos_embed_interp or self.pos_embed_interp)
        if pos is not None:
            stored_prefix = pos.shape[1] - grid[0] * grid[1]
            x = x + pos[:, stored_prefix:]
            if prefix and stored_prefix:
                prefix = [torch.cat(prefix, dim=1) + pos[:, :stored_prefix]]
        x = torch.cat(prefix + [x], dim=1) if prefix else x
        x = model.pos_drop(x)
        block_kwargs: Dict[str, Any] = {}
        if isinstance(model, Beit):
            block_kwargs['shared_rel_pos_bias'] = model.rel_pos_bias() if model.rel_pos_bias is not None else None
        elif isinstance(model, Eva) and model.rope is not None:
            block_kwargs['rope'] = model.rope.get_embed(shape=grid)
        norm_pre = getattr(model, 'norm_pre', None)
        if norm_pre is not None:
            x = norm_pre(x)
        return TokenSequence(x, grid, self.token_prefix_count, block_kwargs)

    def run_blocks(self, tokens: torch.Tensor, start: int, stop: int,
                   block_kwargs: Optional[Dict[str, Any]] = None) -> torch.Tensor:
        """Run blocks ``start`` to ``stop - 1`` on (B, N, C) tokens (recomputed in the backward
        pass when grad checkpointing is on)."""
        if not 0 <= start <= stop <= len(self.model.blocks):
            raise ValueError(f"blocks [{start}, {stop}) are outside the trunk's "
                             f"{len(self.model.blocks)} blocks (the ones after the last chosen "
                             f"block are pruned)")
        kwargs = block_kwargs or {}
        checkpointing = getattr(self.model, 'grad_checkpointing', False) and torch.is_grad_enabled()
        for block in self.model.blocks[start:stop]:
            if checkpointing:
                tokens = torch.utils.checkpoint.checkpoint(block, tokens, use_reentrant=False, **kwargs)
            else:
                tokens = block(tokens, **kwargs)
        return tokens
