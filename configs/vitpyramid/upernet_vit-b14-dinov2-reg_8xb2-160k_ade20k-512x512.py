# UperNet + ViTPyramid, DINOv2 ViT-B/14 with 4 registers, ADE20K 512x512, 160k iterations.
# Same geometry as the ViT-S/14 config; drop path 0.2, AdamW 1e-4, layer decay 0.9.
_base_ = ['./upernet_vit-s14-dinov2-reg_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_base_patch14_reg4_dinov2.lvd142m', drop_path_rate=0.2))
