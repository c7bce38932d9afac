# Runtime shared by every vitadapter config (mmengine Runner, mmseg scope).
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to 'gloo' when no GPU is present (CPU DDP).
    dist_cfg=dict(backend='nccl'),
)
# Heads use plain BN; under DDP mmengine converts it to torch's SyncBatchNorm, so the same config
# runs on one CPU, one GPU and many GPUs.
sync_bn = 'torch'
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
# weights_only-safe checkpoints (vitadapter.engine.training.checkpoint_safety): the runner's resume
# and test load them under torch's weights_only=True, mmseg's own tools/train.py and test.py too
custom_hooks = [dict(type='SafeCheckpointsHook')]
