"""Generated data sets (numpy and PIL only), so the demo and the tests need no download: shapes on
noisy backgrounds as a segmentation set (mmseg layout) and as a COCO instance set."""
from .shapes import SHAPE_CLASSES, SHAPE_PALETTE, make_sample, make_shapes_dataset
from .shapes_coco import COCO_CATEGORIES, make_shapes_coco, mask_to_box, mask_to_rle

__all__ = ['SHAPE_CLASSES', 'SHAPE_PALETTE', 'make_sample', 'make_shapes_dataset', 'COCO_CATEGORIES',
           'make_shapes_coco', 'mask_to_box', 'mask_to_rle']
