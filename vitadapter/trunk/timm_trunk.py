"""TimmViTTrunk: a timm Vision Transformer that returns the token maps of chosen blocks, and the
public block API of the models built on it.

It owns everything about the ViT itself: building it (with clear errors for unknown names and
non-ViT models, see :mod:`vitadapter.trunk.models`), loading local weights, choosing and pruning
blocks, padding inputs of any size, the position-embedding rule, splitting the prefix tokens off,
mapping the patch grid onto a reference stride (:mod:`vitadapter.trunk.grid`), freezing and grad
checkpointing. Models that run their own modules between or beside the ViT's blocks (ViT-Adapter,
EoMT) use its block API instead of :meth:`TimmViTTrunk.forward`::

    seq = trunk.embed(images)                            # TokenSequence: [prefix, patches]
    seq = trunk.run_blocks(seq, 0, k)                    # blocks 0 .. k-1
    seq = trunk.add_tokens(seq, queries)                 # [queries, prefix, patches]
    seq = trunk.run_blocks(seq, k, n, attn_mask=mask)    # masked attention over all of them
    normed = trunk.final_norm(seq.tokens)

Running every block in one call gives exactly the tokens of the trunk's own forward pass.
"""
import inspect
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import PatchDropout
from timm.models import group_parameters
from timm.models.beit import Beit
from timm.models.eva import Eva
from timm.models.vision_transformer import VisionTransformer

from ..compat import rope_embedding
from ..layers import checkpoint_if, grid_size, pad_to_multiple, resample_to_grid
from ..weights.interpolation import check_interpolation
from ..weights.loading import LoadReport, load_checkpoint, pretrained_report, pruned_key_prefixes
from .grid import GRID_MAPPINGS, resize_input_to_grid
from .indices import IndicesT, resolve_out_indices
from .models import check_grad_checkpointing_support, check_is_plain_vit, create_vit, timm_version
from .pos_embed import has_abs_pos_embed, position_embedding
from .prefix import ClassTokenReadout
from .tokens import TokenSequence, additive_mask, unrotated_rows

# The classes whose tokens :meth:`TimmViTTrunk.embed` assembles exactly as timm does (exact
# classes: subclasses such as DeiT's distilled ViT add tokens their own way).
TOKEN_HOOK_CLASSES = (VisionTransformer, Eva, Beit)
# From this timm release Eva's attention reads a float mask the same way on its non-fused path.
EVA_MASK_TIMM = (1, 0, 20)


class TrunkOutput(NamedTuple):
    """maps: (B, C, ceil(H/stride), ceil(W/stride)) per chosen block, on the reference stride grid.
    class_tokens: (B, C) per chosen block (None if the model has no class token).
    register_tokens: (B, R, C) per chosen block (None if the model has no registers)."""
    maps: List[torch.Tensor]
    class_tokens: List[Optional[torch.Tensor]]
    register_tokens: List[Optional[torch.Tensor]]


class TimmViTTrunk(nn.Module):
    """A timm ViT returning maps of chosen blocks on a fixed-stride grid.

    Args:
        model_name: any timm ViT name (with an optional pretrained tag).
        out_indices: blocks to return (int N = last N blocks; negatives count from the end;
            None = ``default_num_outputs`` evenly spaced blocks, e.g. (2, 5, 8, 11) of 12). The
            blocks after the last one are pruned (:meth:`select_blocks` chooses again).
        pretrained: load timm's pretrained weights (needs the hub or timm's offline cache);
            ``load_report`` says from where.
        checkpoint: local weights in any supported layout (timm, official DINOv2/DINOv3, Hugging
            Face ViT/Dinov2/DINOv3, mmseg/mmpretrain, MAE, BEiT; see :mod:`vitadapter.weights`):
            a .pth/.bin/.safetensors file or a Hugging Face model folder. The layout is detected.
        img_size: the size the position embeddings are stored for (any input size still works).
        norm: apply the trunk's final norm to every returned block (DINOv2 style); the final norm
            is kept only then (:meth:`final_norm`).
        prefix_tokens: class token readout: 'ignore', 'add' or 'project'.
        stride: the stride of the returned maps (16 for 4/8/16/32 pyramids); None = the patch size,
            i.e. timm's own token maps, unresampled.
        grid_mapping: 'maps' or 'input', how a patch size != stride is mapped (see grid.py).
        frozen_stages: -1 freezes nothing; 0 the patch embedding and tokens; n > 0 also blocks[:n].
        freeze_trunk: freeze the whole ViT (linear probing); it also stays in eval mode.
        grad_checkpointing: recompute blocks in the backward pass to save memory.
        strict_load: raise (the default) when the checkpoint leaves tensors the trunk uses as
            initialised; False loads what fits (partial loading on purpose; see ``load_report``).
        pos_embed_interp: how position embeddings are interpolated for other input sizes, fixed
            here: 'timm' (bicubic, antialias), 'bicubic' (no antialias: HF ViT/Dinov2, mmseg,
            mmpretrain) or 'dinov2' (official DINOv2). None: as the checkpoint's source does, timm's
            without one. Models without absolute position embeddings (DINOv3) have nothing to
            interpolate.
        model_kwargs: passed to ``timm.create_model`` (drop_path_rate, ...).

    Input (B, 3, H, W) float images, any H and W. Output: :class:`TrunkOutput`.
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
        if pos_embed_interp is not None:
            check_interpolation(pos_embed_interp)
        if img_size is not None:
            model_kwargs['img_size'] = img_size
        self.model_name = model_name
        self.model, self.dynamic_size = create_vit(model_name, pretrained, num_classes=0, **model_kwargs)
        check_is_plain_vit(self.model, model_name)
        self.num_blocks = len(self.model.blocks)
        self.norm = norm
        indices = resolve_out_indices(out_indices, self.num_blocks, default_num_outputs)
        self.load_report: Optional[LoadReport] = pretrained_report(self.model) if pretrained else None
        if checkpoint is not None:
            self.load_report = load_checkpoint(  # what is pruned below may be absent
                self.model, checkpoint, strict=strict_load, pos_embed_interp=pos_embed_interp,
                optional=pruned_key_prefixes(self.num_blocks, max(indices), prune_norm=not norm))
        self._pos_embed_interp = self._choose_pos_embed_interp(pos_embed_interp)
        # the classifier and, unless used, the final norm go now; the blocks after the last used
        # one in select_blocks: no computation is wasted and DDP sees no unused parameters
        self.model.prune_intermediate_layers(indices, prune_norm=not norm, prune_head=True)
        self._block_indices: Tuple[int, ...] = tuple(indices)

        self.embed_dim = int(self.model.embed_dim)
        self.patch_size = tuple(self.model.patch_embed.patch_size)
        self.stride = self.patch_size if stride is None else (stride, stride)
        self.grid_mapping = grid_mapping
        self.num_prefix_tokens = int(self.model.num_prefix_tokens)
        self.has_class_token = getattr(self.model, 'cls_token', None) is not None
        # timm's VisionTransformer records num_reg_tokens; Eva (EVA-02, DINOv3) only has reg_token
        reg_token = getattr(self.model, 'reg_token', None)
        self.num_register_tokens = int(reg_token.shape[1]) if reg_token is not None else \
            int(getattr(self.model, 'num_reg_tokens', 0) or 0)
        if prefix_tokens != 'ignore' and not self.has_class_token:
            raise ValueError(f"prefix_tokens={prefix_tokens!r} needs a class token, but {model_name!r} "
                             f"has none; use prefix_tokens='ignore'")
        self.readout = ClassTokenReadout(prefix_tokens, self.embed_dim, len(indices))

        self.prefix_tokens_dropped = False
        self.frozen_stages = frozen_stages
        self.freeze_trunk = freeze_trunk
        self._freeze()
        self.grad_checkpointing = grad_checkpointing

    def _choose_pos_embed_interp(self, requested: Optional[str]) -> str:
        """The explicit choice, else the checkpoint source's rule where the model can follow it."""
        if requested is not None and requested != 'timm' and not self.has_token_hooks \
                and has_abs_pos_embed(self.model):
            try:
                self.check_token_hooks()
            except ValueError as why:
                raise ValueError(f"pos_embed_interp={requested!r} needs the trunk's own token "
                                 f"assembly, and {why} (or use pos_embed_interp='timm', timm's own "
                                 f"rule)") from None
        if requested is not None:
            return requested
        rule = self.load_report.pos_embed_interp if self.load_report is not None else 'timm'
        if not (self.has_token_hooks and has_abs_pos_embed(self.model) and self.dynamic_size):
            rule = 'timm'
            if self.load_report is not None:
                self.load_report.pos_embed_interp = 'timm'
        return rule

    # ----------------------------------------------------------------------------- what it is
    @property
    def grad_checkpointing(self) -> bool:
        """Whether the blocks are recomputed in the backward pass instead of stored."""
        return self._grad_checkpointing

    @grad_checkpointing.setter
    def grad_checkpointing(self, enabled: bool) -> None:
        self._grad_checkpointing = bool(enabled)
        if not self.has_token_hooks:  # timm's forward_intermediates runs the blocks
            self.model.set_grad_checkpointing(bool(enabled))

    @property
    def pos_embed_interp(self) -> str:
        """The position-embedding interpolation rule, fixed when the trunk was built."""
        return self._pos_embed_interp

    @property
    def block_indices(self) -> Tuple[int, ...]:
        """The blocks :meth:`forward` returns (absolute indices, shallow to deep)."""
        return self._block_indices

    @property
    def blocks(self) -> nn.ModuleList:
        """The ViT's blocks that are kept (those after the last chosen block are pruned)."""
        return self.model.blocks

    @property
    def family(self) -> str:
        """The timm class and module of the ViT: 'VisionTransformer (vision_transformer)'."""
        model = self.model
        return f"{type(model).__name__} ({type(model).__module__.rsplit('.', 1)[-1]})"

    @property
    def has_token_hooks(self) -> bool:
        """Whether :meth:`embed` / :meth:`run_blocks` reproduce this model's forward pass (timm's
        VisionTransformer, Eva and Beit without per-block mixed rope or patch dropout)."""
        model = self.model
        return (type(model) in TOKEN_HOOK_CLASSES and not getattr(model, 'rope_mixed', False)
                and not isinstance(getattr(model, 'patch_drop', None), PatchDropout))

    @property
    def token_prefix_count(self) -> int:
        """How many prefix tokens :meth:`embed` puts before the patch tokens."""
        return 0 if self.prefix_tokens_dropped else self.num_prefix_tokens

    def output_grid(self, image_size: Sequence[int]) -> Tuple[int, int]:
        """Size of the returned maps for an input of ``image_size`` (H, W)."""
        return grid_size(image_size, self.stride)

    # ----------------------------------------------------------------------------- choosing blocks
    def select_blocks(self, out_indices: IndicesT) -> Tuple[int, ...]:
        """Choose the blocks :meth:`forward` returns (as ``out_indices``) and prune those after
        the last one. Blocks pruned before cannot come back: choose within the kept ones."""
        indices = resolve_out_indices(out_indices, self.num_blocks)
        if max(indices) >= len(self.model.blocks):
            raise ValueError(f"blocks {indices} reach past the {len(self.model.blocks)} blocks this "
                             f"trunk kept (the others were pruned when it was built); build it with "
                             f"out_indices reaching block {max(indices)}")
        if len(indices) != len(self._block_indices) and self.readout.mode == 'project':
            raise ValueError("select_blocks cannot change the number of blocks of "
                             "prefix_tokens='project' (one projection per block)")
        self.model.prune_intermediate_layers(indices, prune_norm=not self.norm, prune_head=True)
        self._block_indices = tuple(indices)
        return self._block_indices

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

    # ----------------------------------------------------------------------------- optimisation
    def param_layer_ids(self) -> Tuple[Dict[str, int], int]:
        """Layer id of every parameter (names relative to the trunk: ``model.blocks.3.attn.qkv.weight``)
        by timm's own grouping (``group_matcher``): 0 = the stem (patch and position embeddings,
        prefix tokens), i + 1 = block i, L + 1 = the final norm; and L + 1, the top id (full rate)."""
        model = self.model
        ids = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
        top = len(model.blocks) + 1
        return {f'model.{name}': min(layer, top) for name, layer in ids.items()}, top

    def no_weight_decay(self) -> List[str]:
        """Parameters timm exempts from weight decay (position embeddings, prefix tokens), named
        relative to the trunk."""
        return [f'model.{n}' for n in getattr(self.model, 'no_weight_decay', lambda: ())()]

    # ----------------------------------------------------------------------------- input
    def _prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.grid_mapping == 'input' and self.patch_size != self.stride:
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

    def check_images(self, x: torch.Tensor) -> None:
        """Raise a ValueError unless ``x`` is a float (B, C_in, H, W) batch the ViT can take."""
        channels = self.model.patch_embed.proj.in_channels
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected images (B, {channels}, H, W), got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"expected floating-point images, got a {x.dtype} tensor: convert it "
                             f"with images.float() and normalise it as the weights expect (e.g. "
                             f"ImageNet mean/std on 0-255 pixels), as mmseg's data preprocessor does")

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> TrunkOutput:
        if self.prefix_tokens_dropped:
            raise RuntimeError("this trunk's class/register tokens were removed with "
                               "drop_prefix_tokens(); it runs through embed() and run_blocks() only")
        self.check_images(x)
        blocks = self._token_hook_blocks(x) if self.has_token_hooks else self._timm_blocks(x)
        maps = [m for m, _ in blocks]
        prefixes = [p for _, p in blocks]
        class_tokens = [p[:, 0] if self.has_class_token else None for p in prefixes]
        first_reg = self.num_prefix_tokens - self.num_register_tokens
        register_tokens = [p[:, first_reg:] if self.num_register_tokens else None for p in prefixes]
        maps = self.readout(maps, class_tokens)
        src_stride = self.stride if self.grid_mapping == 'input' else self.patch_size
        out_grid = self.output_grid(x.shape[-2:])
        maps = [resample_to_grid(m, src_stride, self.stride, out_grid) for m in maps]
        return TrunkOutput(maps, class_tokens, register_tokens)

    def _token_hook_blocks(self, x: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """(map (B, C, h, w), prefix tokens (B, P, C)) of every chosen block, through embed(); the
        maps NCHW-contiguous, as timm's forward_intermediates gives them."""
        return [(seq.patch_map().contiguous(), seq.prefix) for seq in self.block_sequences(x)]

    def block_sequences(self, x: torch.Tensor) -> List[TokenSequence]:
        """Images -> the :class:`TokenSequence` after each chosen block (through the final norm
        when built with ``norm=True``): what :meth:`forward` maps, with the prefix tokens in place."""
        seq = self.embed(x)
        out, start = [], 0
        for index in self._block_indices:
            seq = self.run_blocks(seq, start, index + 1)
            start = index + 1
            out.append(seq.with_tokens(self.final_norm(seq.tokens)) if self.norm else seq)
        return out

    def _timm_blocks(self, x: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """The same through timm's forward_intermediates (models that embed their tokens their own
        way; timm's position-embedding rule)."""
        if self.grad_checkpointing and torch.is_grad_enabled():
            check_grad_checkpointing_support()
        # return_prefix_tokens only with prefix tokens (timm < 1.0.15 fails on it without any)
        blocks = self.model.forward_intermediates(
            self._prepare_input(x), indices=list(self._block_indices),
            return_prefix_tokens=self.num_prefix_tokens > 0,
            norm=self.norm, stop_early=True, output_fmt='NCHW', intermediates_only=True)
        if self.num_prefix_tokens:
            return list(blocks)
        return [(m, m.new_zeros(m.shape[0], 0, m.shape[1])) for m in blocks]

    # ----------------------------------------------------------------------------- block API
    def check_token_hooks(self, extra_tokens: bool = False) -> None:
        """Raise a ValueError unless :meth:`embed` and :meth:`run_blocks` reproduce this model's
        own forward pass (see :attr:`has_token_hooks`), and, with ``extra_tokens``, unless its
        blocks also take extra tokens and an attention mask (:meth:`add_tokens`; not BEiT's)."""
        model = self.model
        if extra_tokens and isinstance(model, Beit):
            raise ValueError(f"{self.model_name!r} (BEiT) adds a relative position bias over its own "
                             f"tokens in every block and takes no attention mask, so it cannot run "
                             f"extra tokens (EoMT's queries); choose a ViT whose blocks can (plain "
                             f"ViT, DeiT, DINOv2, EVA-02, DINOv3, CLIP, SigLIP ...)")
        if type(model) not in TOKEN_HOOK_CLASSES:
            raise ValueError(
                f"{self.model_name!r} ({type(model).__name__}) embeds its tokens its own way; the "
                f"block API (embed/run_blocks, used by ViTAdapter and EoMT) supports timm's "
                f"VisionTransformer (ViT, DeiT, DeiT-3, AugReg, DINOv2, CLIP, SigLIP), Eva (EVA-02, "
                f"DINOv3) and Beit")
        if getattr(model, 'rope_mixed', False):
            raise ValueError(f"{self.model_name!r} uses per-block mixed rotary embeddings, which the "
                             f"block API does not support; choose an axial-rope or absolute-position ViT")
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

    def embed(self, x: torch.Tensor) -> TokenSequence:
        """Images (B, 3, H, W), any size (padded to whole patches) -> :class:`TokenSequence`: patch
        embedding, prefix tokens, position embedding (the trunk's rule) or rotary embedding, and
        the pre-norm: the tokens the first block sees."""
        self.check_token_hooks()
        self.check_images(x)
        model = self.model
        x = model.patch_embed(self._prepare_input(x))
        if x.ndim == 4:  # NHWC from dynamic-size models
            grid = (x.shape[1], x.shape[2])  # ints (symbolic under dynamic-shape tracing)
            x = x.flatten(1, 2)
        else:
            grid = tuple(int(g) for g in model.patch_embed.grid_size)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (model.cls_token, getattr(model, 'reg_token', None))
                  if t is not None]
        pos = position_embedding(model, grid, self._pos_embed_interp)
        if pos is not None:
            stored_prefix = pos.shape[1] - grid[0] * grid[1]
            x = x + pos[:, stored_prefix:]
            if prefix and stored_prefix:
                prefix = [torch.cat(prefix, dim=1) + pos[:, :stored_prefix]]
        x = torch.cat(prefix + [x], dim=1) if prefix else x
        x = model.pos_drop(x)
        block_kwargs = {}
        if isinstance(model, Beit):
            block_kwargs['shared_rel_pos_bias'] = model.rel_pos_bias() if model.rel_pos_bias is not None else None
        elif isinstance(model, Eva) and model.rope is not None:
            block_kwargs['rope'] = rope_embedding(model.rope, grid)
        norm_pre = getattr(model, 'norm_pre', None)
        if norm_pre is not None:
            x = norm_pre(x)
        return TokenSequence(x, grid, self.token_prefix_count, block_kwargs)

    def add_tokens(self, seq: TokenSequence, extra: torch.Tensor) -> TokenSequence:
        """Put ``extra`` tokens (B, K, C) (or (K, C), shared by the batch) in front of the
        sequence: ``[extra, earlier extra, prefix, patches]``. They go through the blocks with
        the others and carry no position (a rotary embedding leaves them unrotated, as the prefix
        tokens): EoMT's queries."""
        if extra.ndim == 2:
            extra = extra.unsqueeze(0).expand(seq.tokens.shape[0], -1, -1)
        if extra.ndim != 3 or extra.shape[0] != seq.tokens.shape[0] or extra.shape[2] != seq.tokens.shape[2]:
            raise ValueError(f"extra tokens must be (B, K, {seq.tokens.shape[2]}) for a batch of "
                             f"{seq.tokens.shape[0]}, got {tuple(extra.shape)}")
        if isinstance(self.model, Beit):
            raise ValueError(f"{self.model_name!r} (BEiT) adds a relative position bias over its "
                             f"own tokens in every block, which has no entry for extra tokens; "
                             f"choose another ViT family")
        kwargs = dict(seq.block_kwargs)
        if kwargs.get('rope') is not None:
            kwargs['rope'] = unrotated_rows(kwargs['rope'], extra.shape[1])
        return TokenSequence(torch.cat([extra.to(seq.tokens.dtype), seq.tokens], dim=1), seq.grid,
                             seq.num_prefix_tokens, kwargs, seq.num_extra_tokens + extra.shape[1])

    def run_blocks(self, seq: TokenSequence, start: int, stop: int,
                   attn_mask: Optional[torch.Tensor] = None) -> TokenSequence:
        """Run blocks ``start`` to ``stop - 1`` over the sequence (recomputed in the backward pass
        when grad checkpointing is on).

        Args:
            seq: from :meth:`embed` (and :meth:`add_tokens`), T = E + P + h * w tokens.
            attn_mask: None, or (B or 1, heads or 1, T, T): bool (True = may attend, SDPA's
                convention) or an additive float mask, for every block of the range.
        Returns:
            the sequence after the blocks.
        """
        if not 0 <= start <= stop <= len(self.model.blocks):
            raise ValueError(f"blocks [{start}, {stop}) are outside the trunk's "
                             f"{len(self.model.blocks)} blocks (the ones after the last chosen "
                             f"block are pruned)")
        kwargs = dict(seq.block_kwargs)
        if attn_mask is not None:
            blocks = self.model.blocks[start:stop]
            self._check_mask_support(blocks)
            tokens_total = seq.tokens.shape[1]
            if attn_mask.ndim != 4 or tuple(attn_mask.shape[-2:]) != (tokens_total, tokens_total):
                raise ValueError(f"attn_mask must be (B, heads or 1, {tokens_total}, {tokens_total}) "
                                 f"for {tokens_total} tokens, got {tuple(attn_mask.shape)}")
            kwargs['attn_mask'] = additive_mask(attn_mask, seq.tokens.dtype)
        tokens = seq.tokens
        for block in self.model.blocks[start:stop]:
            tokens = checkpoint_if(self.grad_checkpointing, block, tokens, **kwargs)
        return seq.with_tokens(tokens)

    def _check_mask_support(self, blocks: Sequence[nn.Module]) -> None:
        if isinstance(self.model, Beit):
            raise ValueError(f"{self.model_name!r} (BEiT): timm's BEiT blocks take no attention "
                             f"mask; choose another ViT family")
        for block in blocks:
            params = inspect.signature(block.forward).parameters
            takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())  # FSDP, checkpoint wrappers
            if 'attn_mask' not in params and not takes_kwargs:
                raise ValueError(f"{self.model_name!r}: timm's {type(block).__name__} takes no "
                                 f"attention mask in timm {'.'.join(map(str, timm_version()))}; "
                                 f"upgrade timm or choose another ViT family")
        if isinstance(self.model, Eva) and timm_version() < EVA_MASK_TIMM and any(
                getattr(m, 'fused_attn', True) is False for m in self.model.modules()):
            raise ValueError(f"{self.model_name!r}: Eva's attention without fused attention reads "
                             f"an attention mask as a key-padding mask before timm "
                             f"{'.'.join(map(str, EVA_MASK_TIMM))}; upgrade timm or leave fused "
                             f"attention on (TIMM_FUSED_ATTN unset)")

    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """The ViT's final norm applied to (B, N, C) tokens (kept only when built with norm=True)."""
        if not self.norm:
            raise RuntimeError(f"{self.model_name!r}: this trunk's final norm was pruned (built with "
                               f"norm=False); build it with norm=True to use final_norm()")
        return self.model.norm(tokens)
