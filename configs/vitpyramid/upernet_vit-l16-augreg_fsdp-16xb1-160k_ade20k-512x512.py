# UperNet + ViTPyramid, ViT-L/16 (AugReg, ImageNet-21k -> 1k), ADE20K 512x512, 160k iterations,
# trained fully sharded (FSDP, configs/_base_/fsdp.py: bf16, each block an FSDP unit, activation
# checkpointing). 16 processes x 1 image (2 nodes x 8 GPUs; on one 8-GPU node pass
# --cfg-options train_dataloader.batch_size=2 to keep the global batch at 16).
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=<node 0> bash tools/dist_train.sh THIS_CONFIG 8   (node 0)
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=<node 0> bash tools/dist_train.sh THIS_CONFIG 8   (node 1)
# Features of blocks 5, 11, 17, 23; UperNet at 1024 channels (mmseg's BEiT-L / ViT-Adapter-L);
# AdamW 3e-5, weight decay 0.05, layer decay 0.9 over 24 blocks, drop path 0.3.
_base_ = ['./upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py', '../_base_/fsdp.py']
model = dict(
    backbone=dict(model_name='vit_large_patch16_224.augreg_in21k_ft_in1k',
                  out_indices=(5, 11, 17, 23), drop_path_rate=0.3),
    decode_head=dict(channels=1024))
optim_wrapper = dict(
    optimizer=dict(lr=3e-5, weight_decay=0.05), paramwise_cfg=dict(layer_decay_rate=0.9))
train_dataloader = dict(batch_size=1)
