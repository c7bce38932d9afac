# UperNet + ViT-Adapter on CamVid: configs/vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py
# (the same ViT-Tiny/16 trunk with 6 blocks from random init, data, crops, batch, heads, optimizer,
# schedule and seed) with ViTAdapter instead of ViTPyramid: is the adapter's stride-4 spatial prior
# worth its cost where a stride-16 trunk from scratch misses thin things (pole, sign, pedestrian,
# bicyclist)? The interactions end at blocks 1, 3, 4 and 5, the blocks the ViTPyramid config reads.
#   python tools/train.py configs/vit_adapter/upernet_vit-adapter-t16-scratch_1xb8-1000it_camvid-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = ['../vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAdapter',
        model_name='vit_tiny_patch16_224',
        pretrained=False,
        img_size=176,
        depth=6,
        interaction_indexes=[[0, 1], [2, 3], [4, 4], [5, 5]],
        deform_num_heads=6,  # ViT-Adapter-T's settings: 6 heads, full-width values
        deform_ratio=1.0,
        drop_path_rate=0.0,  # as the ViTPyramid config
        norm_cfg=dict(type='BN', requires_grad=True)))
