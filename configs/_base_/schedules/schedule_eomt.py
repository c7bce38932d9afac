# EoMT's training recipe (tue-mps/eomt, DINOv2 models): AdamW 1e-4, weight decay 0.05; layer-wise
# lr decay 0.8 counted from the last block, the 4 query blocks and the head at the full rate; the
# two-stage warm-up (the head over 500 iterations while the trunk waits, then the trunk over 1000),
# poly 0.9 to the end; mask annealing of the 4 query blocks one after another. The configs set
# max_iters, the annealing windows and the end of the schedule.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.8, full_rate_blocks=4),
    clip_grad=None)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
