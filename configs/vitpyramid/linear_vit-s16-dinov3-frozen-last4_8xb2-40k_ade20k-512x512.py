# DINOv3's linear probe on the four last blocks (the authors' FOUR_LAST layer set): each with the
# final norm, concatenated (4 x 384 = 1536 channels), then Dropout2d -> BatchNorm -> 1x1 conv.
# Everything else as linear_vit-s16-dinov3-frozen_8xb2-40k_ade20k-512x512.py.
_base_ = ['./linear_vit-s16-dinov3-frozen_8xb2-40k_ade20k-512x512.py']
model = dict(
    backbone=dict(out_indices=4),  # blocks 8, 9, 10, 11
    decode_head=dict(in_index=[0, 1, 2, 3]))
