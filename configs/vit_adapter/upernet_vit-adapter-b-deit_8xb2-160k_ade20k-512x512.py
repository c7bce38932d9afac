# UperNet + ViT-Adapter-B (DeiT-B), ADE20K, 512x512, 160k iterations: the official
# configs/ade20k/upernet_deit_adapter_base_512_160k_ade20k.py on mmseg 1.x (official: 48.8 mIoU SS,
# checkpoint upernet_deit_adapter_base_512_160k_ade20k.pth.tar). Everything else as the Small config
# (conversion and training commands there).
_base_ = ['./upernet_vit-adapter-s-deit_8xb2-160k_ade20k-512x512.py']
embed_dim = 768
model = dict(
    backbone=dict(arch='base'),  # deit_base_patch16_224; 12 deformable heads, half-width values (0.5); drop path 0.3
    decode_head=dict(in_channels=[embed_dim] * 4),
    auxiliary_head=dict(in_channels=embed_dim))
