# UperNet on a ViTPyramid backbone (ViT-S/16, default channel-halving pyramid: 96/192/384/384
# channels at strides 4/8/16/32).
# Swap the ViT by changing backbone.model_name: the heads' in_channels='auto' are filled from the
# backbone's feature_info by the segmentor, ViTEncoderDecoder (explicit values are checked
# against it), under mmseg's stock tools as under vitadapter's.
custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)

# BN in the heads works on one CPU/GPU; multi-GPU runs convert it to SyncBN (mmengine sync_bn).
norm_cfg = dict(type='BN', requires_grad=True)
# Training configs set data_preprocessor.size to their crop size (batches are padded to it).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='ViTEncoderDecoder',  # mmseg's EncoderDecoder + in_channels='auto' from the backbone
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ViTPyramid',
        model_name='vit_small_patch16_224',
        pretrained=False,
        img_size=512,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        prefix_tokens='ignore',
        pyramid='simple',
        scales=(4, 2, 1, 0.5),
        norm_cfg=dict(type='LN2d', eps=1e-6)),
    decode_head=dict(
        type='FastUPerHead',  # mmseg's UPerHead, same weights and outputs, faster
        in_channels='auto',
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels='auto',
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
