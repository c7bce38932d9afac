# UperNet + ViTPyramid, DINOv2 ViT-S/14 with 4 registers, ADE20K 512x512, 160k iterations.
# 512 px pads to 518 = 37 patches of 14: exactly the grid the DINOv2 position embeddings were
# trained at (img_size=518), and the token maps are resampled onto the stride-16 grid.
# DINOv2 features: final norm on every block, registers split off. AdamW 1e-4, layer decay 0.9.
_base_ = [
    '../_base_/models/upernet_vitpyramid.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='vit_small_patch14_reg4_dinov2.lvd142m',
        pretrained=True,
        img_size=518,
        out_indices=(2, 5, 8, 11),
        norm=True,
        grid_mapping='maps',
        drop_path_rate=0.1),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05), paramwise_cfg=dict(layer_decay_rate=0.9))
train_dataloader = dict(batch_size=2)
