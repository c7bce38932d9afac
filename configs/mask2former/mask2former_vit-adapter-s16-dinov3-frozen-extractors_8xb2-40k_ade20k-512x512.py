# The DINOv3 segmentation recipe on a model that fits one GPU: a FROZEN DINOv3 ViT-S/16, the
# authors' adapter (DINOv3Adapter: the trunk runs once without gradients and is not
# altered; a spatial prior module and extractors only, 2 extra on the last interaction, reading
# blocks 2, 5, 8, 11 through the final norm; 16 deformable heads, value ratio 0.5, drop path 0.3 on
# the extractors' ConvFFN), and Mask2Former on top (facebookresearch/dinov3,
# eval/segmentation/models: DINOv3_Adapter + Mask2FormerHead). Only the adapter and the head train.
# Head and data as the ViT-S/16 Mask2Former config; the authors publish no training schedule for
# it, so: AdamW 1e-4 (adapter and head alike), weight decay 0.05, gradient clipping 0.01, poly,
# 40k iterations. For ViT-L (24 blocks) the default trunk_layers are [4, 11, 17, 23].
#   python tools/train.py configs/mask2former/mask2former_vit-adapter-s16-dinov3-frozen-extractors_8xb2-40k_ade20k-512x512.py
_base_ = ['./mask2former_vit-s16-augreg_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='DINOv3Adapter',
        model_name='vit_small_patch16_dinov3.lvd1689m',
        pretrained=True,
        trunk_layers=[2, 5, 8, 11],
        deform_num_heads=16,
        deform_ratio=0.5,
        drop_path_rate=0.3,
        norm_cfg=dict(type='BN', requires_grad=True)))  # SyncBN under DDP (runtime sync_bn)
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={'query_embed': embed_multi, 'query_feat': embed_multi, 'level_embed': embed_multi},
        norm_decay_mult=0.0))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000, by_epoch=False)]
train_cfg = dict(max_iters=40000, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
