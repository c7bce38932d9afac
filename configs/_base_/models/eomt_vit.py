# EoMT (Kerssies et al., CVPR 2025; tue-mps/eomt) as an mmseg segmentor: 100 queries join the last
# 4 blocks of the ViT; Mask2Former's matching and losses on each of the 5 predictions (classes 2,
# masks 5, dice 5, no object 0.1, 12544 points per mask). No neck, no head, no in_channels.
# Inference: mmseg's slide mode at the training crop, stride 2/3 of it, as the authors evaluate.
custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EoMTSegmentor',
    data_preprocessor=data_preprocessor,
    network=dict(
        type='EoMT',
        model_name='vit_large_patch14_reg4_dinov2.lvd142m',
        pretrained=True,
        img_size=512,
        patch_size=16,  # the authors run DINOv2 at patch 16 (timm resamples the patch embedding)
        num_classes=150,
        num_queries=100,
        num_blocks=4,
        drop_path_rate=0.0),
    loss=dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1, num_points=12544, oversample_ratio=3.0,
              importance_sample_ratio=0.75),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
