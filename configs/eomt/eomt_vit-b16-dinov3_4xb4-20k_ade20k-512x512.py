# EoMT-B on DINOv3-B/16: the DINOv3-L recipe on the base model.
_base_ = ['./eomt_vit-l16-dinov3_4xb4-20k_ade20k-512x512.py']
model = dict(network=dict(model_name='vit_base_patch16_dinov3.lvd1689m'))
