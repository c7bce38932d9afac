# UperNet + ViTPyramid, DINOv3 ViT-S/16 (LVD-1689M distilled), fine-tuned, ADE20K 512x512, 160k.
# DINOv3: RoPE (any grid, nothing to interpolate), class + 4 register tokens (split off), layer
# scale. Features: blocks 2, 5, 8, 11 (the authors' FOUR_EVEN_INTERVALS) with the final norm.
# AdamW 1e-4, weight decay 0.05, layer decay 0.9, drop path 0.1; the rest as the ViT-B/16 DeiT config.
_base_ = ['./upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_small_patch16_dinov3.lvd1689m', norm=True, drop_path_rate=0.1))
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05), paramwise_cfg=dict(layer_decay_rate=0.9))
