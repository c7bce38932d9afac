# Baseline for the CamVid comparison: mmseg's own VisionTransformer + Feature2Pyramid with the
# same width, depth, blocks, head and schedule as
# configs/vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py (random init, 1000 iters),
# and mmseg's own UPerHead (vitadapter's FastUPerHead computes the same function faster).
_base_ = ['../vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py']
embed_dim = 192
model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        img_size=(176, 176),
        patch_size=16,
        in_channels=3,
        embed_dims=embed_dim,
        num_layers=6,
        num_heads=3,
        mlp_ratio=4,
        out_indices=(1, 3, 4, 5),
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        with_cls_token=True,
        final_norm=False,
        norm_cfg=dict(type='LN', eps=1e-6),
        act_cfg=dict(type='GELU'),
        interpolate_mode='bicubic'),
    neck=dict(
        type='Feature2Pyramid',
        embed_dim=embed_dim,
        rescales=[4, 2, 1, 0.5],
        norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(type='UPerHead', in_channels=[embed_dim] * 4),
    auxiliary_head=dict(in_channels=embed_dim))
# mmseg's VisionTransformer is not a vitadapter trunk: plain AdamW with the same settings.
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
