# UperNet + ViT-Adapter-S (DeiT-S), ADE20K, 512x512 crops, 160k iterations: the official
# ViT-Adapter configs/ade20k/upernet_deit_adapter_small_512_160k_ade20k.py (mmseg 0.x) on mmseg 1.x.
# Official result: 46.2 mIoU single-scale (checkpoint upernet_deit_adapter_small_512_160k_ade20k.pth).
#
# Evaluate the official checkpoint: convert it once, then load it:
#   vitadapter-convert upernet_deit_adapter_small_512_160k_ade20k.pth work_dirs/vit-adapter-s.pth
#   python tools/test.py THIS_CONFIG work_dirs/vit-adapter-s.pth
# Train from DeiT-S ImageNet-1k weights (deit_small_patch16_224-cd65a155.pth, timm layout):
#   python tools/train.py THIS_CONFIG --cfg-options model.backbone.checkpoint=PATH
_base_ = [
    '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)

crop_size = (512, 512)
num_classes = 150
embed_dim = 384
# Official: SyncBN. BN works on one CPU/GPU; the runtime's sync_bn='torch' makes it SyncBN under DDP.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    size=crop_size,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='ViTEncoderDecoder',  # mmseg's EncoderDecoder + in_channels='auto' from the backbone
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ViTAdapter',
        arch='small',  # deit_small_patch16_224; 6 deformable heads, full-width values; drop path 0.2
        img_size=224,  # official pretrain_size: position embeddings stored for 14x14 patches
        init_values=1.0,  # LayerScale in every block, as in the official ViT (timm kwarg)
        checkpoint=None,  # DeiT weights to train from (unused when loading a converted checkpoint)
        interaction_indexes=[[0, 2], [3, 5], [6, 8], [9, 11]],
        conv_inplane=64,
        n_points=4,
        cffn_ratio=0.25,
        injector_init_values=0.0,
        add_vit_feature=True,
        use_extra_extractor=True,
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='FastUPerHead',  # mmseg's UPerHead, same weights and outputs, faster
        in_channels=[embed_dim] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=embed_dim,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

# The official test pipeline: resize to 2048x512 keeping the aspect ratio, then to multiples of 32.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Official: AdamW lr 6e-5 (12e-5 for Tiny), weight decay 0.01, layer decay 0.95 over the 12 blocks,
# 1500 warm-up iterations then poly (the schedule base), 8 GPUs x 2 images, fp16 (mmseg 1.x:
# tools/train.py --amp). The layer decay follows the official rule: blocks.i -> 0.95 ** (12 - i),
# patch/position embeddings 0.95 ** 13, the adapter and the heads the full lr.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(layer_decay_rate=0.95))
train_dataloader = dict(batch_size=2)
