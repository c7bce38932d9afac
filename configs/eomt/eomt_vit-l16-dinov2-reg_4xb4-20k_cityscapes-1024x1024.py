# EoMT-L on DINOv2-L with registers (patch 16), Cityscapes semantic 1024x1024: the authors'
# recipe (tue-mps/eomt configs/dinov2/cityscapes/semantic/eomt_large_1024.yaml: 107 epochs of 2975
# images at batch 16 = 19.9k iterations, windows 3317 iterations long). 4 GPUs x 4 images.
_base_ = ['../_base_/models/eomt_vit.py', '../_base_/datasets/cityscapes.py',
          '../_base_/default_runtime.py', '../_base_/schedules/schedule_eomt.py']
crop_size = (1024, 1024)
max_iters = 20000
model = dict(
    data_preprocessor=dict(size=crop_size),
    network=dict(img_size=1024, num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(683, 683)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
param_scheduler = [dict(type='TwoStageWarmupPolyLR', warmup=(500, 1000), power=0.9, end=max_iters)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
custom_hooks = [
    dict(type='SafeCheckpointsHook'),
    dict(type='MaskAnnealingHook', starts=[3317, 6634, 9951, 13268], ends=[6634, 9951, 13268, 16585],
         power=0.9),
]
