# The README's main job: UperNet + ViTPyramid (ViT-Tiny/16, 4 blocks, random init) trained on the
# generated shapes data set for 400 iterations on a CPU, then evaluated (tools/demo.py).
_base_ = [
    '../_base_/models/upernet_vitpyramid.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py'
]
crop_size = (96, 96)
num_classes = 4
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='vit_tiny_patch16_224',
        img_size=96,
        depth=4,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0),
    decode_head=dict(channels=64, num_classes=num_classes, dropout_ratio=0.0),
    auxiliary_head=dict(channels=32, num_classes=num_classes, dropout_ratio=0.0))

max_iters = 400
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
