# Fully sharded data parallel (FSDP): add this file to a config's _base_ to train any vitadapter
# segmentor with its weights, gradients and optimizer state sharded across the processes.
# mmengine's FlexibleRunner + FSDPStrategy do the work; vitadapter's TrunkBlockFSDP wrapper makes
# every trunk block an FSDP unit and checkpoints its activations (vitadapter/engine/fsdp.py).
# Launch as any config: bash tools/dist_train.sh CONFIG GPUS (NNODES=... for several machines).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='TrunkFSDPStrategy',  # mmengine's FSDPStrategy, its resume fixed for torch >= 2.1
    model_wrapper=dict(
        type='TrunkBlockFSDP',
        checkpoint_blocks=True,  # recompute each block in the backward pass
        # bf16 compute and all-gathers; gradients reduced and the optimizer run in float32
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32'),
        use_orig_params=True,  # per-parameter groups (layer decay, frozen trunk) survive sharding
    ),
    # checkpoints gathered on rank 0: a plain segmentor checkpoint (tools/test.py on one process)
    # plus the optimizer state that resuming under FSDP needs
    state_dict_cfg='full',
)
