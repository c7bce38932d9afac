# UperNet + ViT-Adapter-T (DeiT-T), ADE20K, 512x512, 160k iterations: the official
# configs/ade20k/upernet_deit_adapter_tiny_512_160k_ade20k.py on mmseg 1.x (official: 42.6 mIoU SS,
# checkpoint upernet_deit_adapter_tiny_512_160_ade20k.pth.tar). Everything else as the Small config
# (conversion and training commands there).
_base_ = ['./upernet_vit-adapter-s-deit_8xb2-160k_ade20k-512x512.py']
embed_dim = 192
model = dict(
    backbone=dict(arch='tiny'),  # deit_tiny_patch16_224; 6 deformable heads; drop path 0.1
    decode_head=dict(in_channels=[embed_dim] * 4),
    auxiliary_head=dict(in_channels=embed_dim))
optim_wrapper = dict(optimizer=dict(lr=12e-5))
