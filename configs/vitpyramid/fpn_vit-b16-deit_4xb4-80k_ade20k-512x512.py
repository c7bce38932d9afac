# Semantic FPN (mmseg's FPN neck + FPNHead) on ViTPyramid ViT-B/16 (DeiT), ADE20K 512x512, 80k.
# The FPN's in_channels='auto' are filled from the backbone's feature_info (96/192/384/384 x 2).
_base_ = [
    '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)
crop_size = (512, 512)
norm_cfg = dict(type='BN', requires_grad=True)
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
        model_name='deit_base_patch16_224.fb_in1k',
        pretrained=True,
        img_size=512,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.2),
    neck=dict(type='FPN', in_channels='auto', out_channels=256, num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05), paramwise_cfg=dict(layer_decay_rate=0.9))
train_dataloader = dict(batch_size=4)
