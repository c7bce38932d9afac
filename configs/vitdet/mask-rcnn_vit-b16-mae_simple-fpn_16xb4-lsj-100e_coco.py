# ViTDet Mask R-CNN, ViT-B/16 initialised from MAE (timm's vit_base_patch16_224.mae), COCO LSJ
# 1024, 100 epochs (mmdet's projects/ViTDet vitdet_mask-rcnn_vit-b-mae_lsj-100e.py with vitadapter's
# ViTPyramid + LastLevelMaxPool in place of its ViT + SimpleFPN). Needs the upstream stack (mmdet
# with mmcv's compiled ops):
#   VITADAPTER_STACK=upstream bash tools/in_venv.sh python tools/train.py CONFIG
#   (or mmdet's tools/train.py / mim train mmdet CONFIG in that environment; 16 GPUs x 4 images)
_base_ = [
    '../_base_/models/mask-rcnn_vitpyramid.py', '../_base_/datasets/coco_instance_lsj-1024.py',
    '../_base_/schedules/schedule_lsj-100e.py', '../_base_/detection_runtime.py'
]
image_size = (1024, 1024)
model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(model_name='vit_base_patch16_224.mae', pretrained=True, img_size=1024,
                  drop_path_rate=0.1))
