# Mask2Former + ViTPyramid, ViT-S/16 (AugReg, ImageNet-21k -> 1k), ADE20K 512x512, 160k iterations.
# Head and recipe of mmseg's Mask2Former ADE20K configs: AdamW 1e-4, weight decay 0.05, backbone
# lr x0.1, no decay on the query / level embeddings and norms, gradient clipping 0.01, poly 0.9,
# shortest-edge 256..1024 multi-scale crops, 8 GPUs x 2 images. Sliding-window test (the ViT sees
# 512x512 windows, as in training).
#   python tools/train.py configs/mask2former/mask2former_vit-s16-augreg_8xb2-160k_ade20k-512x512.py
_base_ = [
    '../_base_/models/mask2former_vit.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(model_name='vit_small_patch16_224.augreg_in21k_ft_in1k', pretrained=True,
                  drop_path_rate=0.1),
    decode_head=dict(num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[int(512 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2048),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        },
        norm_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=160000, by_epoch=False)
]
