# EoMT-S on DINOv3-S/16: the DINOv3-L recipe on the small model (fits one GPU).
_base_ = ['./eomt_vit-l16-dinov3_4xb4-20k_ade20k-512x512.py']
model = dict(network=dict(model_name='vit_small_patch16_dinov3.lvd1689m'))
