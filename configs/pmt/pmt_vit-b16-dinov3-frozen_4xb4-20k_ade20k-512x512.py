# PMT-B on a frozen DINOv3-B/16: the PMT-L recipe with the authors' base settings (blocks 2, 5,
# 8, 11; decoder MLP width 768; tue-mps/pmt image/configs/coco/panoptic/pmt_b_640.yaml).
_base_ = ['./pmt_vit-l16-dinov3-frozen_4xb4-20k_ade20k-512x512.py']
model = dict(network=dict(model_name='vit_base_patch16_dinov3.lvd1689m', trunk_layers=[2, 5, 8, 11],
                          decoder_mlp_dim=768))
