# EoMT-L on DINOv2-L with registers (patch 16), ADE20K semantic 512x512: the authors' ADE20K
# recipe (tue-mps/eomt configs/dinov2/ade20k/semantic/eomt_large_512.yaml: 31 epochs of 20210
# images at batch 16 = 39.2k iterations; 100 queries in the last 4 blocks; annealing windows
# 6520 iterations long, one block after another). 4 GPUs x 4 images.
#   bash tools/dist_train.sh configs/eomt/eomt_vit-l16-dinov2-reg_4xb4-40k_ade20k-512x512.py 4
_base_ = ['../_base_/models/eomt_vit.py', '../_base_/datasets/ade20k.py',
          '../_base_/default_runtime.py', '../_base_/schedules/schedule_eomt.py']
max_iters = 40000
train_dataloader = dict(batch_size=4)
param_scheduler = [dict(type='TwoStageWarmupPolyLR', warmup=(500, 1000), power=0.9, end=max_iters)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
custom_hooks = [
    dict(type='SafeCheckpointsHook'),
    dict(type='MaskAnnealingHook', starts=[6520, 13040, 19560, 26080],
         ends=[13040, 19560, 26080, 32600], power=0.9),
]
