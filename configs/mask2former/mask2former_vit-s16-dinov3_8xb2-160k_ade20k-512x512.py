# Mask2Former + ViTPyramid on a fine-tuned DINOv3 ViT-S/16 (LVD-1689M distilled), ADE20K 512x512,
# 160k iterations. Features: blocks 2, 5, 8, 11 (the authors' FOUR_EVEN_INTERVALS) with the final
# norm; class and 4 register tokens split off. The head and data of the ViT-S/16 Mask2Former config;
# the trunk fine-tuned with layer-wise lr decay 0.9 (AdamW 1e-4, weight decay 0.05, drop path 0.1)
# instead of a flat x0.1; query / level embeddings without weight decay; gradient clipping 0.01.
#   python tools/train.py configs/mask2former/mask2former_vit-s16-dinov3_8xb2-160k_ade20k-512x512.py
_base_ = ['./mask2former_vit-s16-augreg_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_small_patch16_dinov3.lvd1689m', norm=True, drop_path_rate=0.1))
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.9,
        custom_keys={'query_embed': embed_multi, 'query_feat': embed_multi, 'level_embed': embed_multi}))
