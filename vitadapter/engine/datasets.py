"""Data sets vitadapter adds to mmseg's ``DATASETS`` registry.

``CamVidDataset``: the 11-class CamVid split of SegNet (mmseg's layout: ``img_dir/{train,val}``,
``ann_dir/{train,val}``, PNG images and uint8 label maps). Label 11 is void: it is mapped to
mmseg's ignore index 255 when the annotations are loaded.

``ShapesDataset``: the generated shapes set (:func:`vitadapter.data.make_shapes_dataset`).
"""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..data.shapes import SHAPE_CLASSES, SHAPE_PALETTE

CAMVID_VOID = 11


@DATASETS.register_module()
class CamVidDataset(BaseSegDataset):
    METAINFO = dict(
        classes=('sky', 'building', 'pole', 'road', 'sidewalk', 'tree', 'sign_symbol', 'fence',
                 'car', 'pedestrian', 'bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [0, 0, 192],
                 [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                 [0, 128, 192]])

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes=None):
        """Identity for the 11 classes, void (11) -> 255 (ignored by losses and metrics)."""
        label_map = {i: i for i in range(len(cls.METAINFO['classes']))}
        label_map[CAMVID_VOID] = 255
        return label_map


@DATASETS.register_module()
class ShapesDataset(BaseSegDataset):
    METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
