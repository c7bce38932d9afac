# PMT-L (tue-mps/pmt, 2026) on a frozen DINOv3-L/16, ADE20K 512x512: the authors' recipe
# (image/configs/ade20k/semantic/pmt_l_512.yaml): the trunk frozen and run once without
# gradients; blocks 5, 11, 17, 23 through its final norm, BN + residual MLP each, summed; a plain
# mask decoder of 6 DINOv3-style layers (MLP width 1024), 100 queries, masked attention annealed
# over 6 windows; AdamW 2e-4 with a 6000-iteration linear warm-up then cosine to 1e-9, 16 epochs
# (20.2k iterations at batch 16). Only the decoder, the laterals and the head train.
_base_ = ['../_base_/models/eomt_vit.py', '../_base_/datasets/ade20k.py',
          '../_base_/default_runtime.py', '../_base_/schedules/schedule_eomt.py']
max_iters = 20000
model = dict(network=dict(
    _delete_=True, type='PMT', model_name='vit_large_patch16_dinov3.lvd1689m', pretrained=True,
    img_size=512, num_classes=150, num_queries=100, num_decoder_layers=6, trunk_layers=[5, 11, 17, 23],
    decoder_mlp_dim=1024, norm_cfg=dict(type='BN')))  # SyncBN under DDP (runtime sync_bn)
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=6000),
    dict(type='CosineAnnealingLR', eta_min=1e-9, by_epoch=False, begin=6000, end=max_iters, T_max=max_iters - 6000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
custom_hooks = [
    dict(type='SafeCheckpointsHook'),
    dict(type='MaskAnnealingHook', starts=[0, 5384, 7403, 9422, 11442, 13461],
         ends=[3000, 8749, 10769, 12788, 14807, 16826], power=0.9),
]
