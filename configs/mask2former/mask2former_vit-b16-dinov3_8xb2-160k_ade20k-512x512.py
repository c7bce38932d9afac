# Mask2Former + ViTPyramid on a fine-tuned DINOv3 ViT-B/16: as the ViT-S/16 DINOv3 config, with
# drop path 0.2.
_base_ = ['./mask2former_vit-s16-dinov3_8xb2-160k_ade20k-512x512.py']
model = dict(backbone=dict(model_name='vit_base_patch16_dinov3.lvd1689m', drop_path_rate=0.2))
