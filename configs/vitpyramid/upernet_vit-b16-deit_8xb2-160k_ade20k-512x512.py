# UperNet + ViTPyramid, ViT-B/16 (DeiT, ImageNet-1k), ADE20K 512x512, 160k iterations.
# Recipe of ViT-Adapter's DeiT-B UperNet: AdamW 6e-5, layer decay 0.95, drop path 0.3.
_base_ = [
    '../_base_/models/upernet_vitpyramid.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='deit_base_patch16_224.fb_in1k',
        pretrained=True,
        img_size=512,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.3),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(
    optimizer=dict(lr=6e-5, weight_decay=0.01), paramwise_cfg=dict(layer_decay_rate=0.95))
train_dataloader = dict(batch_size=2)
