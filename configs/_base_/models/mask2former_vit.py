# Mask2Former on a ViTPyramid backbone (ViT-S/16, channel-halving pyramid at strides 4/8/16/32):
# the real Mask2Former ADE20K head settings (mmseg's configs/mask2former/*ade20k*: 100 queries,
# 256 channels, 6 deformable encoder layers, 9 decoder layers, losses 2 / 5 / 5 with no-object
# weight 0.1, 12544 points per mask).
# TorchMask2FormerHead is vitadapter's plain-PyTorch Mask2Former: the parameters (state_dict keys)
# of mmseg's Mask2FormerHead, without mmdet or mmcv's compiled ops, so it trains on every stack,
# CPU and GPU. Its in_channels='auto' are filled from the backbone by ViTEncoderDecoder.
custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)

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
        type='TorchMask2FormerHead',
        in_channels='auto',
        num_classes=150,
        feat_channels=256,
        out_channels=256,
        num_queries=100,
        num_transformer_feat_level=3,
        pixel_decoder=dict(num_layers=6, num_heads=8, num_points=4, feedforward_channels=1024),
        transformer_decoder=dict(num_layers=9, num_heads=8, feedforward_channels=2048),
        loss_weights=dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1),
        train_cfg=dict(num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
