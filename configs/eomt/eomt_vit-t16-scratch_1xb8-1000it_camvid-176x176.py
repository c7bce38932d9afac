# EoMT (encoder-only mask transformer) on ViT-Tiny/16 (6 blocks, random init) on CamVid: the budget
# of the other CamVid configs (same trunk, data, crops, batch, optimizer, schedule and seed, from
# configs/vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py) with no pyramid, no pixel
# decoder and no decoder: 50 queries join the last 2 of the 6 blocks; masked attention annealed
# block after block over the authors' share of the schedule (ADE20K: 16.3% to 81.5% of it, the
# rest trained without masks, as inference runs): iterations 163-489 (first query block) and
# 489-815 (second); Mask2Former's losses at 3136 points per mask, as the Mask2Former CamVid config.
#   python tools/train.py configs/eomt/eomt_vit-t16-scratch_1xb8-1000it_camvid-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = ['../vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py']
model = dict(
    _delete_=True,
    type='EoMTSegmentor',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(176, 176)),
    network=dict(
        type='EoMT',
        model_name='vit_tiny_patch16_224',
        pretrained=False,
        img_size=176,
        depth=6,
        num_classes=11,
        num_queries=50,
        num_blocks=2,
        drop_path_rate=0.0),
    loss=dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1, num_points=3136),
    test_cfg=dict(mode='whole'))
custom_hooks = [
    dict(type='SafeCheckpointsHook'),
    dict(type='MaskAnnealingHook', starts=[163, 489], ends=[489, 815], power=0.9),
]
