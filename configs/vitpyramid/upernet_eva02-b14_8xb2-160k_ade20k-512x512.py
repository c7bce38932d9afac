# UperNet + ViTPyramid, EVA-02 ViT-B/14 (MIM pre-trained on ImageNet-22k), ADE20K 512x512, 160k.
# EVA-02 uses rotary position embeddings (built by timm for any grid) and SwiGLU MLPs; 512 px pads
# to 37 patches of 14, resampled onto the stride-16 grid.
# AdamW 1e-4, weight decay 0.05, layer decay 0.9, drop path 0.1; the rest as the ViT-B/16 DeiT config.
_base_ = ['./upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='eva02_base_patch14_224.mim_in22k', img_size=518, drop_path_rate=0.1))
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05), paramwise_cfg=dict(layer_decay_rate=0.9))
