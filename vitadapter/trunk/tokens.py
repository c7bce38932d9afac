"""The token sequence a trunk's blocks run on, and what running them with extra tokens and an
attention mask needs (:meth:`TimmViTTrunk.embed`, :meth:`~TimmViTTrunk.add_tokens`,
:meth:`~TimmViTTrunk.run_blocks`).

The sequence is ``[extra tokens (E), prefix tokens (P: class, registers), patch tokens (h * w, row
by row)]``. Extra tokens belong to the caller (EoMT's queries): they go through the blocks with the
others and have no position, like the prefix tokens (a rotary embedding leaves them unrotated).
"""
from typing import Any, Dict, NamedTuple, Optional, Tuple

import torch


class TokenSequence(NamedTuple):
    """tokens: (B, E + P + h * w, C). grid: (h, w), the patch grid. num_prefix_tokens: P.
    block_kwargs: what every block also takes (EVA's and DINOv3's rotary embedding, BEiT's shared
    relative position bias). num_extra_tokens: E (0 unless :meth:`TimmViTTrunk.add_tokens`)."""
    tokens: torch.Tensor
    grid: Tuple[int, int]
    num_prefix_tokens: int
    block_kwargs: Dict[str, Any]
    num_extra_tokens: int = 0

    @property
    def extra(self) -> torch.Tensor:
        """(B, E, C): the extra tokens."""
        return self.tokens[:, :self.num_extra_tokens]

    @property
    def prefix(self) -> torch.Tensor:
        """(B, P, C): the class and register tokens."""
        return self.tokens[:, self.num_extra_tokens:self.num_extra_tokens + self.num_prefix_tokens]

    @property
    def patches(self) -> torch.Tensor:
        """(B, h * w, C): the patch tokens, row by row."""
        return self.tokens[:, self.num_extra_tokens + self.num_prefix_tokens:]

    def patch_map(self, tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, C, h, w): the patch tokens (of ``tokens``, a normed copy of the sequence, say) as a map."""
        tokens = self.tokens if tokens is None else tokens
        patches = tokens[:, self.num_extra_tokens + self.num_prefix_tokens:]
        return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], *self.grid)

    def with_tokens(self, tokens: torch.Tensor) -> 'TokenSequence':
        """The same sequence layout holding ``tokens``."""
        return self._replace(tokens=tokens)


def unrotated_rows(rope: torch.Tensor, count: int) -> torch.Tensor:
    """A timm rotary embedding ``cat([sin, cos], -1)`` of shape (N, 2 * d) with ``count`` rows of
    the identity rotation (sin 0, cos 1) in front: positionless tokens before the patches."""
    if rope.ndim != 2:
        raise ValueError(f"extra tokens need a rotary embedding of shape (N, 2 * d) "
                         f"(sin and cos concatenated), got {tuple(rope.shape)}")
    half = rope.shape[-1] // 2
    identity = torch.cat([rope.new_zeros(count, half), rope.new_ones(count, half)], dim=-1)
    return torch.cat([identity, rope], dim=0)


def additive_mask(attn_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An attention mask as the additive float mask every timm attention path reads alike: a bool
    mask (True = may attend, SDPA's convention) becomes 0 there and the dtype's lowest value
    elsewhere (a row with nothing allowed then attends uniformly instead of giving NaN); a float
    mask is cast to ``dtype``."""
    if attn_mask.dtype != torch.bool:
        return attn_mask.to(dtype)
    return torch.zeros(attn_mask.shape, dtype=dtype, device=attn_mask.device).masked_fill_(
        ~attn_mask, torch.finfo(dtype).min)
