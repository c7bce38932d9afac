# UperNet + ViTPyramid, DINOv2 ViT-g/14 (1.1B parameters, LVD-142M), fine-tuned, ADE20K 512x512,
# 160k iterations, fully sharded (FSDP, configs/_base_/fsdp.py: weights, gradients and AdamW state
# split over the processes, bf16 compute, every block an FSDP unit with activation checkpointing).
# 2 nodes x 8 GPUs x 1 image, one command per node:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=<node 0> bash tools/dist_train.sh THIS_CONFIG 8
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=<node 0> bash tools/dist_train.sh THIS_CONFIG 8
# (SLURM: GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB THIS_CONFIG.)
# 512 px pads to 518 = 37 patches of 14 (DINOv2's own grid); maps resampled onto stride 16.
# Features of blocks 9, 19, 29, 39 (of 40) with the final norm; UperNet at 1024 channels;
# AdamW 3e-5, weight decay 0.05, layer decay 0.95 (0.9 ** 40 would all but freeze the first
# blocks), drop path 0.4.
_base_ = ['./upernet_vit-l16-augreg_fsdp-16xb1-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(model_name='vit_giant_patch14_dinov2.lvd142m', norm=True, grid_mapping='maps',
                  img_size=518, out_indices=(9, 19, 29, 39), drop_path_rate=0.4))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
