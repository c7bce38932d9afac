# UperNet + ViTPyramid, DINOv3 ViT-L/16 (LVD-1689M), fine-tuned, ADE20K 512x512, 160k iterations,
# fully sharded (FSDP, configs/_base_/fsdp.py); 16 processes x 1 image, launched as the ViT-L/16
# AugReg FSDP config. RoPE, class + 4 registers split off, final norm on the features of blocks
# 5, 11, 17, 23; AdamW 5e-5, weight decay 0.05, layer decay 0.9, drop path 0.3.
_base_ = ['./upernet_vit-l16-augreg_fsdp-16xb1-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_large_patch16_dinov3.lvd1689m', norm=True, drop_path_rate=0.3))
optim_wrapper = dict(optimizer=dict(lr=5e-5))
