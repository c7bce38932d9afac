# The generated shapes instance set (vitadapter.data.shapes_coco): discs, squares and triangles
# on noisy backgrounds, 128x128 images, boxes and masks in COCO format. Make it with
#   python tools/make_shapes_coco.py data/shapes_coco
dataset_type = 'CocoDataset'
data_root = 'data/shapes_coco/'
metainfo = dict(classes=('disc', 'square', 'triangle'),
                palette=[(230, 60, 60), (60, 200, 60), (60, 90, 230)])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),  # records scale_factor (1, 1)
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'instances')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# No ann_file: the metric converts the data set's own annotations (passed along as 'instances'),
# so --data-root (vitadapter's tools) and data_root overrides move the scoring with the data.
val_evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'], format_only=False)
test_evaluator = val_evaluator
