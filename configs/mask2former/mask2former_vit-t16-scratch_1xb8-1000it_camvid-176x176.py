# Mask2Former + ViTPyramid (ViT-Tiny/16, 6 blocks, random init) on CamVid: the budget of
# configs/vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py (same trunk, data, schedule
# and optimizer, inherited from it) with a Mask2Former head instead of UperNet (and no auxiliary
# head), sized for a 2-core CPU: 128 channels instead of 256, 3 encoder layers instead of 6,
# 6 decoder layers instead of 9, 4 heads, FFNs of 512, 50 queries for 11 classes instead of 100,
# and 3136 (56^2) points per mask instead of 12544 (the 44x44 mask logits of a 176x176 crop have
# 1936 pixels). Everything else as configs/_base_/models/mask2former_vit.py.
#   python tools/train.py configs/mask2former/mask2former_vit-t16-scratch_1xb8-1000it_camvid-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = ['../vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='TorchMask2FormerHead',
        in_channels='auto',
        num_classes=11,
        feat_channels=128,
        out_channels=128,
        num_queries=50,
        num_transformer_feat_level=3,
        pixel_decoder=dict(num_layers=3, num_heads=4, num_points=4, feedforward_channels=512),
        transformer_decoder=dict(num_layers=6, num_heads=4, feedforward_channels=512),
        loss_weights=dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1),
        train_cfg=dict(num_points=3136, oversample_ratio=3.0, importance_sample_ratio=0.75)),
    auxiliary_head=None)
