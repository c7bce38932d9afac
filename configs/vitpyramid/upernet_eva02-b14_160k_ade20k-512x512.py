# UperNet + ViTPyramid, EVA-02 ViT-B/14 (MIM pre-trained on ImageNet-22k), ADE20K 512x512, 160k.
# EVA-02 uses rotary position embeddings (built by timm for any grid) and SwiGLU MLPs; 512 px pads
# to 37 patches of 14, resampled onto the stride-16 grid.
# AdamW 1e-4, weight decay 0.05, layer decay 0.9, drop path 0.1.
_base_ = [
    '../_base_/models/upernet_vitpyramid.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='eva02_base_patch14_224.mim_in22k',
        pretrained=True,
        img_size=518,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05), paramwise_cfg=dict(layer_decay_rate=0.9))
train_dataloader = dict(batch_size=2)
