"""PMT: a plain mask transformer on a frozen, shared ViT (tue-mps/pmt, 2026): EoMT's prediction on
top of a frozen trunk, with a small decoder instead of the trunk's last blocks.

The trunk is frozen and run once without gradients; four of its blocks (evenly spaced: [5, 11, 17,
23] of 24) are taken through its final norm, each normalised (BatchNorm over channels) and passed
through a small residual MLP with a learned per-channel scale, and summed into one token map. A
"plain mask decoder" of M ViT layers (6; DINOv3-style: RoPE on the patches, layer scale, no key
bias) runs over ``[queries, prefix, patches]`` with masked attention and mask annealing, as EoMT's
query blocks do, and EoMT's head predicts before each layer and after the last::

    with torch.no_grad(): levels = final_norm(trunk(image)[taken blocks])     # [prefix, patches]
    x = sum_i scale_i * (bn_i(levels_i) + mlp_i(bn_i(levels_i)))
    x = [queries, x]
    for each decoder layer: predict from decoder_norm(x), mask, x = layer(x, rope, mask)
    predict from decoder_norm(x)

Because the trunk is untouched, one trunk pass can serve several heads (PMT's point).
"""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import LayerNorm

from ..compat import rope_embedding
from ..layers import MaskClassificationHead, build_norm2d, is_traced, query_attention_mask
from ..trunk import TimmViTTrunk, TokenSequence, additive_mask, evenly_spaced_blocks
from .eomt import MaskPredictions, MaskTransformer


def _dinov3_parts():
    try:
        from timm.layers import RotaryEmbeddingDinoV3
        from timm.models.eva import EvaBlock
    except ImportError as e:  # pragma: no cover - timm < 1.0.20
        raise ImportError("PMT's decoder uses timm's DINOv3 rotary embedding (RotaryEmbeddingDinoV3, "
                          "timm >= 1.0.20): pip install -U timm") from e
    return RotaryEmbeddingDinoV3, EvaBlock


class LateralProjection(nn.Module):
    """One taken block's tokens -> ``scale * (x + MLP(x))`` with x = BN(tokens): BatchNorm over
    channels (``norm``), Linear D -> D/2 -> GELU -> D (``mlp``), per-channel ``scale`` (ones).
    forward: (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, norm_cfg: Optional[dict] = None):
        super().__init__()
        self.norm = build_norm2d(norm_cfg if norm_cfg is not None else dict(type='BN'), dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim // 2), nn.GELU(), nn.Linear(dim // 2, dim))
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm(tokens.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)
        return (x + self.mlp(x)) * self.scale


class PMT(MaskTransformer):
    """PMT on a frozen timm ViT.

    Args:
        model_name: any timm ViT (DINOv3 in the paper).
        num_classes: K. num_queries: Q (100). num_decoder_layers: M (6).
        trunk_layers: the blocks taken (default 4 evenly spaced, ending with the last).
        decoder_mlp_dim: the decoder layers' MLP width (PMT-L: 1024 = D; default D).
        norm_cfg: the lateral norms (BN; SyncBN under DDP).
        masked_attention: as EoMT's.
        pretrained / checkpoint / img_size / strict_load / pos_embed_interp: the trunk's.
        **model_kwargs: passed on to ``timm.create_model``.

    Parameters: ``trunk.model.*`` (frozen), ``laterals.i.*``, ``queries.weight``,
    ``decoder.i.*`` (timm's EvaBlock), ``decoder_norm``, ``head.*``; buffer ``attn_mask_probs`` (M,).

    forward: images (B, 3, H, W) -> :class:`~vitadapter.models.eomt.MaskPredictions`.
    """

    def __init__(self, model_name: str, num_classes: int, num_queries: int = 100,
                 num_decoder_layers: int = 6, trunk_layers: Optional[Sequence[int]] = None,
                 decoder_mlp_dim: Optional[int] = None, norm_cfg: Optional[dict] = None,
                 masked_attention: bool = True, pretrained: bool = False, checkpoint: Optional[str] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None, strict_load: bool = True,
                 pos_embed_interp: Optional[str] = None, **model_kwargs):
        super().__init__()
        rope_class, block_class = _dinov3_parts()
        self.trunk = TimmViTTrunk(
            model_name, out_indices=None, default_num_outputs=1, pretrained=pretrained,
            checkpoint=checkpoint, img_size=img_size, norm=True, freeze_trunk=True,
            strict_load=strict_load, pos_embed_interp=pos_embed_interp, **model_kwargs)
        taken = list(trunk_layers) if trunk_layers is not None else evenly_spaced_blocks(self.trunk.num_blocks, 4)
        self.trunk.select_blocks(taken)
        if num_decoder_layers < 1:
            raise ValueError(f"num_decoder_layers={num_decoder_layers}: PMT needs at least one decoder layer (6)")
        dim, heads = self.trunk.embed_dim, self._num_heads()
        self.num_classes, self.num_queries = num_classes, num_queries
        self.num_blocks = num_decoder_layers
        self.masked_attention = masked_attention
        self.laterals = nn.ModuleList(LateralProjection(dim, norm_cfg) for _ in taken)
        self.queries = nn.Embedding(num_queries, dim)
        prefix = self.trunk.num_prefix_tokens
        self.rope = rope_class(dim // heads, temperature=100.0, rotate_half=True)
        self.decoder = nn.ModuleList(
            block_class(dim, heads, qkv_bias=True, mlp_ratio=(decoder_mlp_dim or dim) / dim,
                        num_prefix_tokens=num_queries + prefix, rotate_half=True, init_values=1.0,
                        norm_layer=partial(LayerNorm, eps=1e-5))
            for _ in range(num_decoder_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = MaskClassificationHead(dim, num_classes, self.trunk.patch_size)
        self.register_buffer('attn_mask_probs', torch.ones(num_decoder_layers))

    def _num_heads(self) -> int:
        attn = getattr(self.trunk.blocks[0], 'attn', None)
        heads = getattr(attn, 'num_heads', None)
        if not isinstance(heads, int):
            raise ValueError(f"{self.trunk.model_name!r}: PMT's decoder takes the trunk's number of "
                             f"attention heads, which its blocks do not name (attn.num_heads)")
        return heads

    def trunk_levels(self, x: torch.Tensor) -> List[TokenSequence]:
        """The frozen trunk, once, without gradients: the taken blocks' sequences ``[prefix,
        patches]`` (B, P + h * w, D), through the final norm."""
        with torch.no_grad():
            return self.trunk.block_sequences(x)

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> MaskPredictions:
        levels = self.trunk_levels(x)
        grid, prefix = levels[0].grid, levels[0].num_prefix_tokens
        tokens = sum(lateral(level.tokens) for lateral, level in zip(self.laterals, levels))
        q = self.queries.weight.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        seq = TokenSequence(torch.cat([q.to(tokens.dtype), tokens], 1), grid, prefix, {}, self.num_queries)
        rope = rope_embedding(self.rope, grid)
        masks, classes = [], []
        probs = [0.0] * self.num_blocks if is_traced() else self.attn_mask_probs.tolist()
        for j, layer in enumerate(self.decoder):
            attn_mask = None
            if self.masked_attention and (self.training or probs[j] > 0):
                mask_logits, class_logits = self.predict(seq)
                masks.append(mask_logits)
                classes.append(class_logits)
                if probs[j] > 0:
                    attn_mask = additive_mask(query_attention_mask(mask_logits, grid, prefix, probs[j],
                                                                   generator), tokens.dtype)
            seq = seq.with_tokens(layer(seq.tokens, rope=rope, attn_mask=attn_mask))
        mask_logits, class_logits = self.predict(seq)
        return MaskPredictions(masks + [mask_logits], classes + [class_logits])

    def predict(self, seq: TokenSequence) -> Tuple[torch.Tensor, torch.Tensor]:
        normed = self.decoder_norm(seq.tokens)
        return self.head(normed[:, :seq.num_extra_tokens], seq.patch_map(normed))
