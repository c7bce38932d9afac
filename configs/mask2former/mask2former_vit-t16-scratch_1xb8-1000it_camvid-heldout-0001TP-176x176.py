# mask2former_vit-t16-scratch_1xb8-1000it_camvid-176x176.py on CamVid's sequence-held-out protocol:
# trained on the 305 train frames of sequences 0006R0 and 0016E5, scored on the 62 frames of
# sequence 0001TP, which training never sees (every val frame is of 0016E5, which also gives
# 204 of the train frames). The same budget.
#   python tools/train.py configs/mask2former/mask2former_vit-t16-scratch_1xb8-1000it_camvid-heldout-0001TP-176x176.py \
#       --data-root ../shared/data/camvid
_base_ = ['./mask2former_vit-t16-scratch_1xb8-1000it_camvid-176x176.py']
train_dataloader = dict(dataset=dict(sequences=['0006R0', '0016E5']))
heldout = dict(data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
               sequences=['0001TP'])
val_dataloader = dict(dataset=heldout)
test_dataloader = dict(dataset=heldout)
