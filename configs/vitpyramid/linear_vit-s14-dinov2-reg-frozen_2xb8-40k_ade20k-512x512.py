# DINOv2's linear probe: frozen DINOv2 ViT-S/14 (4 registers), last four blocks with the final
# norm, each concatenated with its class token, batch norm and a 1x1 conv (LinearProbeHead).
# Only the head trains. ADE20K 512x512, 40k iterations. Set concat_cls_token=False (and
# output_cls_token=False) for patch tokens only.
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
        model_name='vit_small_patch14_reg4_dinov2.lvd142m',
        pretrained=True,
        img_size=518,
        out_indices=4,
        norm=True,
        pyramid='none',
        output_cls_token=True,
        freeze_trunk=True),
    decode_head=dict(
        type='LinearProbeHead',
        in_channels='auto',
        in_index=[0, 1, 2, 3],
        concat_cls_token=True,
        dropout_ratio=0.0,
        num_classes=150,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
# Only the head trains: plain AdamW, no layer decay (the trunk has no trainable parameter).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=40000, by_epoch=False)]
train_dataloader = dict(batch_size=8)
