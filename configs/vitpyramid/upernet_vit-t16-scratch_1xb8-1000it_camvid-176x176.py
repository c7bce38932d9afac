# UperNet + ViTPyramid (ViT-Tiny/16, 6 blocks, random init) on CamVid, sized to train on a 2-core
# CPU in minutes: the real-data check of the whole pipeline (results: configs/vitpyramid/README.md).
#   python tools/train.py configs/vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = [
    '../_base_/models/upernet_vitpyramid.py', '../_base_/datasets/camvid.py',
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
    decode_head=dict(channels=128, num_classes=num_classes),
    auxiliary_head=dict(channels=64, num_classes=num_classes),
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
