# DINOv3's linear probe, as its authors run it (facebookresearch/dinov3, eval/segmentation:
# config-ade20k-linear-training.yaml, heads/linear_head.py): frozen DINOv3 ViT-S/16, the LAST block
# with the backbone's final norm, patch tokens only (class and 4 register tokens left out),
# Dropout2d(0.1) -> BatchNorm -> 1x1 conv (LinearProbeHead, dropout_before_norm=True). Only the head
# trains: AdamW 1e-3, weight decay 1e-3, 1500 warm-up iterations then cosine to 0, 40k iterations,
# 16 images per step (2 per GPU x 8 GPUs), random resize 0.5-2.0 + 512 crop + flip (no photometric
# distortion), sliding-window test 512 / stride 341.
# The four last blocks concatenated: linear_vit-s16-dinov3-frozen-last4_8xb2-40k_ade20k-512x512.py.
_base_ = [
    '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py'
]
custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)
crop_size = (512, 512)
model = dict(
    type='ViTEncoderDecoder',  # mmseg's EncoderDecoder + in_channels='auto' from the backbone
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        size=crop_size,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='ViTPyramid',
        model_name='vit_small_patch16_dinov3.lvd1689m',
        pretrained=True,
        out_indices=1,  # the last block
        norm=True,  # the backbone's final norm on it
        pyramid='none',  # the stride-16 token map itself
        freeze_trunk=True),
    decode_head=dict(
        type='LinearProbeHead',
        in_channels='auto',
        in_index=[0],
        dropout_before_norm=True,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=dict(type='BN', requires_grad=True),  # SyncBN under DDP (sync_bn='torch')
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='CosineAnnealingLR', eta_min=0.0, T_max=38500, by_epoch=False, begin=1500, end=40000),
]
