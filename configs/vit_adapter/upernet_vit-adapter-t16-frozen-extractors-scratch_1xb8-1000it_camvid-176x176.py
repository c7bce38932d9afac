# UperNet + the DINOv3-style extractor-only ViT-Adapter (DINOv3Adapter) on a FROZEN,
# randomly initialised ViT-Tiny/16 (6 blocks) on CamVid: the budget, data, schedule and heads of
# configs/vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py, only the backbone differs.
# The trunk is never trained here (random features, run once without gradients): what this config
# reaches is a FLOOR for the recipe, what the spatial prior and the extractors learn on their own
# over random ViT features, not a result of it (the recipe's point is a frozen PRETRAINED trunk,
# e.g. DINOv3). Compare it with the UperNet config, whose trunk trains.
#   python tools/train.py \
#       configs/vit_adapter/upernet_vit-adapter-t16-frozen-extractors-scratch_1xb8-1000it_camvid-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = ['../vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='DINOv3Adapter',    # the DINOv3 segmentation adapter: extractors only (+2 on the last)
        model_name='vit_tiny_patch16_224',
        pretrained=False,
        img_size=176,
        depth=6,                 # the trunk is frozen: it runs once, without gradients
        # trunk_layers: DINOv3's default, the last block of 4 equal groups: [0, 2, 3, 5] of 6
        deform_num_heads=16,     # DINOv3's adapter defaults: 16 heads, half-width values
        deform_ratio=0.5,
        drop_path_rate=0.0))     # as the UperNet config (DINOv3's adapter: 0.3 on the extractors)
