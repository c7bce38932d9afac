# EoMT on ViT-S/16 AugReg (ImageNet-21k, fine-tuned on 1k), ADE20K 512x512: the DINOv2 recipe of
# eomt_vit-l16-dinov2-reg (lr 1e-4, layer decay 0.8, warm-up 500 + 1000, the same windows) on a
# ViT that fits one GPU. 4 GPUs x 4 images.
_base_ = ['./eomt_vit-l16-dinov2-reg_4xb4-40k_ade20k-512x512.py']
model = dict(network=dict(model_name='vit_small_patch16_224.augreg_in21k_ft_in1k', patch_size=16))
