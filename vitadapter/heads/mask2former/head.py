"""The Mask2Former head: pixel decoder + masked-attention transformer decoder, its loss and its
semantic-segmentation inference.

Parameter names are those of mmseg 1.x's ``Mask2FormerHead`` (``pixel_decoder.*``,
``transformer_decoder.*``, ``query_embed``, ``query_feat``, ``level_embed``, ``cls_embed``,
``mask_embed.{0,2,4}``): its state dict loads with ``strict=True``. The decoder width is
``feat_channels`` (mmdet's ``decoder_input_projs`` are then identities, without parameters).
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import Mask2FormerLoss, Target
from .pixel_decoder import MSDeformAttnPixelDecoder
from .positional import sine_positional_encoding
from .transformer_decoder import MaskedTransformerDecoder, predict_masks


class Mask2Former(nn.Module):
    """Args:
        in_channels: channels of the input maps, finest (stride 4) first.
        num_classes: K.
        feat_channels: pixel-decoder and transformer-decoder width (256).
        out_channels: mask-feature / mask-embedding width (256).
        num_queries: Q (100).
        num_levels: pixel-decoder levels the encoder and the decoder's cross-attention read (3).
        encoder_layers, encoder_heads, encoder_points, encoder_ffn: pixel decoder (6, 8, 4, 1024).
        decoder_layers, decoder_heads, decoder_ffn: transformer decoder (9, 8, 2048).
        num_groups: GroupNorm groups in the pixel decoder (32).
        deform_implementation: see :class:`~vitadapter.layers.DeformableAttention`.

    forward: features [(B, C_i, H/4 .. H/32)] -> (class logits [(B, Q, K + 1)], mask logits
    [(B, Q, H/4, W/4)]), decoder_layers + 1 of each (the queries before the first layer, then after
    every layer; the last is the prediction).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, feat_channels: int = 256,
                 out_channels: int = 256, num_queries: int = 100, num_levels: int = 3,
                 encoder_layers: int = 6, encoder_heads: int = 8, encoder_points: int = 4,
                 encoder_ffn: int = 1024, decoder_layers: int = 9, decoder_heads: int = 8,
                 decoder_ffn: int = 2048, num_groups: int = 32, deform_implementation: str = 'auto'):
        super().__init__()
        self.num_classes, self.num_queries, self.num_levels = num_classes, num_queries, num_levels
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            in_channels, feat_channels, out_channels, num_levels, encoder_layers, encoder_heads,
            encoder_points, encoder_ffn, num_groups, deform_implementation)
        self.transformer_decoder = MaskedTransformerDecoder(decoder_layers, feat_channels,
                                                            decoder_heads, decoder_ffn)
        self.query_embed = nn.Embedding(num_queries, feat_channels)
        self.query_feat = nn.Embedding(num_queries, feat_channels)
        self.level_embed = nn.Embedding(num_levels, feat_channels)
        self.cls_embed = nn.Linear(feat_channels, num_classes + 1)
        self.mask_embed = nn.Sequential(
            nn.Linear(feat_channels, feat_channels), nn.ReLU(),
            nn.Linear(feat_channels, feat_channels), nn.ReLU(),
            nn.Linear(feat_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """mmdet's ``init_weights``: the pixel decoder's, xavier-normal decoder matrices; the
        embeddings N(0, 1) and the linear layers torch's defaults (mmdet leaves them so)."""
        self.pixel_decoder.reset_parameters()
        for p in self.transformer_decoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)

    def forward(self, features: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        mask_features, memories = self.pixel_decoder(features)
        b = mask_features.shape[0]
        tokens, positions = [], []
        for i, memory in enumerate(memories):  # coarsest first
            h, w = memory.shape[-2:]
            tokens.append(memory.flatten(2).transpose(1, 2) + self.level_embed.weight[i].view(1, 1, -1))
            pos = sine_positional_encoding(h, w, memory.shape[1] // 2, device=memory.device)
            positions.append(pos.to(memory.dtype).flatten(2).transpose(1, 2))
        query = self.query_feat.weight.unsqueeze(0).expand(b, -1, -1)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(b, -1, -1)
        decoder = self.transformer_decoder
        cls_logits, mask_logits, attn_mask = predict_masks(
            query, mask_features, decoder, self.cls_embed, self.mask_embed, memories[0].shape[-2:])
        cls_preds, mask_preds = [cls_logits], [mask_logits]
        for i, layer in enumerate(decoder.layers):
            level = i % self.num_levels
            query = layer(query, query_pos, tokens[level], positions[level], attn_mask)
            cls_logits, mask_logits, attn_mask = predict_masks(
                query, mask_features, decoder, self.cls_embed, self.mask_embed,
                memories[(i + 1) % self.num_levels].shape[-2:])
            cls_preds.append(cls_logits)
            mask_preds.append(mask_logits)
        return cls_preds, mask_preds

    def loss(self, features: List[torch.Tensor], targets: Sequence[Target],
             criterion: Mask2FormerLoss) -> Dict[str, torch.Tensor]:
        """features as for forward, targets [(labels (G_b,), masks (G_b, H, W))] per image (see
        :func:`semantic_targets`) -> the losses of every decoder output (see :class:`Mask2FormerLoss`)."""
        cls_preds, mask_preds = self(features)
        return criterion(cls_preds, mask_preds, targets)


def semantic_targets(seg: torch.Tensor, ignore_index: int = 255) -> Target:
    """seg (H, W) or (1, H, W) class ids -> (labels (G,) sorted present classes without
    ``ignore_index``, masks (G, H, W) bool: one binary mask per present class)."""
    seg = seg.reshape(seg.shape[-2:])
    labels = torch.unique(seg)
    labels = labels[labels != ignore_index].long()
    return labels, seg[None] == labels[:, None, None]


def semantic_inference(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                       size: Tuple[int, int]) -> torch.Tensor:
    """cls_logits (B, Q, K + 1), mask_logits (B, Q, h, w) -> per-class scores (B, K, H, W) at
    ``size``: sum over queries of softmax class probabilities (no-object dropped) times the
    sigmoid of the bilinearly upsampled mask."""
    masks = F.interpolate(mask_logits, size=size, mode='bilinear', align_corners=False).sigmoid()
    probs = cls_logits.softmax(-1)[..., :-1]
    return torch.einsum('bqc,bqhw->bchw', probs, masks)
