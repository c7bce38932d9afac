# Runtime of vitadapter's detection configs: mmengine Runner in the mmdet scope.
# Detection needs mmdet with mmcv's compiled ops (RoIAlign, nms): the upstream stack
# (VITADAPTER_STACK=upstream bash tools/in_venv.sh ...). vitadapter.engine.detection says so
# plainly, when the config is read, on a stack without them.
custom_imports = dict(imports=['vitadapter', 'vitadapter.engine.detection'],
                      allow_failed_imports=False)
default_scope = 'mmdet'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
custom_hooks = [dict(type='SafeCheckpointsHook')]  # weights_only-safe checkpoints
