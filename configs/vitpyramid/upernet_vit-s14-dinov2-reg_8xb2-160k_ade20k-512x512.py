# UperNet + ViTPyramid, DINOv2 ViT-S/14 with 4 registers, ADE20K 512x512, 160k iterations.
# 512 px pads to 518 = 37 patches of 14: exactly the grid the DINOv2 position embeddings were
# trained at (img_size=518), and the token maps are resampled onto the stride-16 grid.
# DINOv2 features: final norm on every block, registers split off. AdamW 1e-4, weight decay 0.05,
# layer decay 0.9, drop path 0.1 (as the EVA-02 config); the rest as the ViT-B/16 DeiT config.
_base_ = ['./upernet_eva02-b14_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_small_patch14_reg4_dinov2.lvd142m', norm=True, grid_mapping='maps'))
