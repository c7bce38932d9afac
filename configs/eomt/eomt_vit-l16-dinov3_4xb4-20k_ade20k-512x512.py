# EoMT-L on DINOv3-L/16 (LVD-1689M), ADE20K 512x512: the authors' DINOv3 recipe (tue-mps/eomt
# configs/dinov3/ade20k/semantic/eomt_large_512.yaml: 16 epochs = 20.2k iterations at batch 16;
# lr 2e-4 everywhere (their lr_mult 0.1 never applies to the blocks), no layer decay, warm-up
# 2000 + 3000, the first query block annealed from the start). 4 GPUs x 4 images.
_base_ = ['./eomt_vit-l16-dinov2-reg_4xb4-40k_ade20k-512x512.py']
max_iters = 20000
model = dict(network=dict(
    _delete_=True, type='EoMT', model_name='vit_large_patch16_dinov3.lvd1689m', pretrained=True,
    img_size=512, num_classes=150, num_queries=100, num_blocks=4, drop_path_rate=0.0))
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=1.0))
param_scheduler = [dict(type='TwoStageWarmupPolyLR', warmup=(2000, 3000), power=0.9, end=max_iters)]
train_cfg = dict(max_iters=max_iters)
custom_hooks = [
    dict(type='SafeCheckpointsHook'),
    dict(type='MaskAnnealingHook', starts=[0, 6520, 9780, 13040], ends=[3000, 9780, 13040, 16300],
         power=0.9),
]
