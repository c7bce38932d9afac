# Mask2Former + ViTPyramid (ViT-Tiny/16, 6 blocks, random init) on CamVid: the budget of
# configs/vitpyramid/upernet_vit-t16-scratch_1000it_camvid-176x176.py (same trunk, data, schedule
# and optimizer) with a Mask2Former head instead of UperNet, sized for a 2-core CPU:
# 128 channels instead of 256, 3 encoder layers instead of 6, 6 decoder layers instead of 9,
# 4 heads, FFNs of 512, 50 queries for 11 classes instead of 100, and 3136 (56^2) points per mask
# instead of 12544 (the 44x44 mask logits of a 176x176 crop have 1936 pixels).
#   python tools/train.py configs/mask2former/mask2former_vit-t16-scratch_1000it_camvid-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = [
    '../_base_/models/mask2former_vit.py', '../_base_/datasets/camvid.py',
    '../_base_/default_runtime.py'
]
crop_size = (176, 176)
num_classes = 11
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='vit_tiny_patch16_224',
        img_size=176,
        depth=6,
        out_indices=(1, 3, 4, 5),
        drop_path_rate=0.0),
    decode_head=dict(
        num_classes=num_classes,
        feat_channels=128,
        out_channels=128,
        num_queries=50,
        pixel_decoder=dict(num_layers=3, num_heads=4, feedforward_channels=512),
        transformer_decoder=dict(num_layers=6, num_heads=4, feedforward_channels=512),
        train_cfg=dict(num_points=3136)),
    test_cfg=dict(mode='whole'))

max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0))  # from scratch: no layer decay
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=100, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
