# Mask2Former + ViT-Adapter-S (DeiT-S), ADE20K 512x512, 160k iterations: the ViTPyramid
# Mask2Former config with the backbone of configs/vit_adapter/upernet_vit-adapter-s-deit_*.py.
# Same head and recipe (AdamW 1e-4, backbone lr x0.1; the adapter's level_embed, like the head's,
# gets lr x1 and no weight decay: the longer custom key wins in mmengine).
# Train from DeiT-S ImageNet-1k weights (deit_small_patch16_224-cd65a155.pth, timm layout):
#   python tools/train.py THIS_CONFIG --cfg-options model.backbone.checkpoint=PATH
_base_ = ['./mask2former_vit-s16-augreg_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAdapter',
        arch='small',  # deit_small_patch16_224; 6 deformable heads, full-width values; drop path 0.2
        img_size=224,  # official pretrain_size: position embeddings stored for 14x14 patches
        init_values=1.0,  # LayerScale in every block, as in the official ViT (timm kwarg)
        checkpoint=None,  # DeiT weights to train from
        interaction_indexes=[[0, 2], [3, 5], [6, 8], [9, 11]],
        conv_inplane=64,
        n_points=4,
        cffn_ratio=0.25,
        injector_init_values=0.0,
        add_vit_feature=True,
        use_extra_extractor=True,
        norm_cfg=dict(type='BN', requires_grad=True)))  # SyncBN under DDP (runtime sync_bn)
