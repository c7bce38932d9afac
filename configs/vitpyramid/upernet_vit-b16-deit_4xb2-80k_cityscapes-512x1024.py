# UperNet + ViTPyramid ViT-B/16 (DeiT) on Cityscapes (19 classes), 512x1024 crops, 80k iterations.
_base_ = [
    '../_base_/models/upernet_vitpyramid.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k.py'
]
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='deit_base_patch16_224.fb_in1k',
        pretrained=True,
        img_size=(512, 1024),
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.3),
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(512, 512)))
optim_wrapper = dict(
    optimizer=dict(lr=6e-5, weight_decay=0.01), paramwise_cfg=dict(layer_decay_rate=0.95))
train_dataloader = dict(batch_size=2)
