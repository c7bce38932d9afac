# The ViTDet recipe at CPU scale: Mask R-CNN on a ViT-Tiny/16 (4 blocks, random init) with the
# simple feature pyramid from its last block (64 channels) + LastLevelMaxPool, ViTDet's RPN and
# LayerNorm2d RoI heads (narrower), trained 1000 iterations on the generated shapes instance set
# (128x128 images, 3 classes) and scored with mmdet's CocoMetric (bbox and mask mAP).
#   python tools/make_shapes_coco.py data/shapes_coco
#   VITADAPTER_STACK=upstream bash tools/in_venv.sh python tools/train.py \
#       configs/vitdet/mask-rcnn_vit-t16-scratch_simple-fpn_1xb4-1000it_shapes-coco.py
_base_ = [
    '../_base_/models/mask-rcnn_vitpyramid.py', '../_base_/datasets/shapes_coco.py',
    '../_base_/detection_runtime.py'
]
channels = 64
norm_cfg = dict(type='LN2d', eps=1e-6, requires_grad=True)
model = dict(
    backbone=dict(model_name='vit_tiny_patch16_224', img_size=128, depth=4, drop_path_rate=0.0,
                  out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, conv_out_channels=channels, fc_out_channels=256,
                       num_classes=3),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300)))

max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0),
    clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
train_dataloader = dict(batch_size=4)
