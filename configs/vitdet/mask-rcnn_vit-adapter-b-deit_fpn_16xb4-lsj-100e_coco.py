# Mask R-CNN with ViT-Adapter-B (DeiT-B/16, ImageNet weights from timm) + mmdet's FPN, ViTDet's RoI
# heads (4conv1fc box head, LayerNorm2d everywhere), COCO LSJ 1024, 100 epochs: the ViTDet recipe
# of mask-rcnn_vit-b16-mae_simple-fpn_16xb4-lsj-100e_coco.py with the adapter's multi-level features
# (blocks 2/5/8/11, strides 4/8/16/32, 768 channels each) in place of the last-block pyramid.
# Needs the upstream stack (mmdet with mmcv's compiled ops); see that config for the commands.
_base_ = ['./mask-rcnn_vit-b16-mae_simple-fpn_16xb4-lsj-100e_coco.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAdapter',
        arch='base',              # deit_base_patch16_224, 12 deformable heads, drop path 0.3
        pretrained=True,          # position embeddings kept at 224, interpolated per input
        drop_path_rate=0.1),      # ViTDet-B's stochastic depth for this schedule
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[768, 768, 768, 768],
        out_channels=256,
        num_outs=5))             # + stride 64 by max pooling, as LastLevelMaxPool
# the spatial prior module's BN becomes torch's SyncBatchNorm under DDP (official: SyncBN)
sync_bn = 'torch'
