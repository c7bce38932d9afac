# UperNet + ViTPyramid, ViT-S/16 (AugReg, ImageNet-21k -> 1k), ADE20K 512x512, 160k iterations.
# Recipe of ViT-Adapter / mmseg ViT-UperNet: AdamW 6e-5, layer decay 0.95, drop path 0.1; the rest
# as the ViT-B/16 DeiT config.
_base_ = ['./upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_small_patch16_224.augreg_in21k_ft_in1k', drop_path_rate=0.1))
