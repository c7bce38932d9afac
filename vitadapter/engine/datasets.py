"""Data sets vitadapter adds to mmseg's ``DATASETS`` registry.

``CamVidDataset``: the 11-class CamVid split of SegNet (mmseg's layout: ``img_dir/{train,val}``,
``ann_dir/{train,val}``, PNG images and uint8 label maps). Label 11 is void: it is mapped to
mmseg's ignore index 255 when the annotations are loaded. Its frames are named by their video
sequence (``0001TP_006690.png``, ``0006R0_f01890.png``, ``0016E5_08039.png``): ``sequences=`` keeps
those sequences only, which is how the sequence-held-out protocol is written (every val frame
is of 0016E5, which also gives 204 of the 367 train frames).

``ShapesDataset``: the generated shapes set (:func:`vitadapter.data.make_shapes_dataset`).

Both say which folder they found no image in, and what to do, instead of an empty data set.
"""
import os
from typing import List, Optional, Sequence

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..data.shapes import SHAPE_CLASSES, SHAPE_PALETTE

CAMVID_VOID = 11


class DataSetNotFound(FileNotFoundError):
    """A data set's image folder is missing or empty (the message names it and the fix)."""


class NamedFolderDataset(BaseSegDataset):
    """An mmseg data set read from an image folder that refuses to be empty."""

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img_path', '')
        data_list = super().load_data_list() if os.path.isdir(folder) else []
        if not data_list:
            found = 'does not exist' if not os.path.isdir(folder) else f'holds no {self.img_suffix} image'
            raise DataSetNotFound(
                f"{type(self).__name__}: {folder} {found}. Point the config at the data set (the "
                f"folder holding img_dir/ and ann_dir/): --data-root DIR with vitadapter's tools, "
                f"--cfg-options train_dataloader.dataset.data_root=DIR (and the val and test "
                f"loaders') with mmseg's")
        return data_list


def sequence_of(path: str) -> str:
    """The CamVid video sequence of a frame's file: '0016E5' for '0016E5_08039.png'."""
    return os.path.basename(path).split('_')[0]


@DATASETS.register_module()
class CamVidDataset(NamedFolderDataset):
    METAINFO = dict(
        classes=('sky', 'building', 'pole', 'road', 'sidewalk', 'tree', 'sign_symbol', 'fence',
                 'car', 'pedestrian', 'bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [0, 0, 192],
                 [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                 [0, 128, 192]])

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False,
                 sequences: Optional[Sequence[str]] = None, **kwargs):
        self.sequences = None if sequences is None else tuple(sequences)
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if self.sequences is None:
            return data_list
        kept = [d for d in data_list if sequence_of(d['img_path']) in self.sequences]
        if not kept:
            found = sorted({sequence_of(d['img_path']) for d in data_list})
            raise ValueError(f"CamVidDataset: no frame of the sequences {list(self.sequences)} in "
                             f"{self.data_prefix.get('img_path')}, which holds {found}")
        return kept

    @classmethod
    def get_label_map(cls, new_classes=None):
        """Identity for the 11 classes, void (11) -> 255 (ignored by losses and metrics)."""
        label_map = {i: i for i in range(len(cls.METAINFO['classes']))}
        label_map[CAMVID_VOID] = 255
        return label_map


@DATASETS.register_module()
class ShapesDataset(NamedFolderDataset):
    METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
