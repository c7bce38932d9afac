# ViTDet's COCO schedule: 100 epochs at 64 images per iteration = 184375 iterations, AdamW
# (lr 1e-4, weight decay 0.1) with layer-wise lr decay 0.7 (ViT-B), 250 warm-up iterations, lr x0.1
# at 88 and 96 epochs. Batches of 4 per GPU (16 GPUs); mmdet's --auto-scale-lr rescales the lr for
# another total batch. Mixed precision: add --amp on the command line.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7))
max_iters = 184375
interval = 5000  # validation (and, in detection_runtime.py, checkpoint) interval
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=interval,
    dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=64)
