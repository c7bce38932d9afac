"""The demo's shapes as a COCO instance data set, so detection trains and is scored without a download.

``make_shapes_coco(root)`` writes::

    root/train/*.png, root/val/*.png
    root/annotations/instances_train.json, root/annotations/instances_val.json

Images are drawn like the segmentation shapes set (:mod:`vitadapter.data.shapes`: noisy
grey background with a gradient; discs, squares and triangles of random sizes, each kind with its
own hue), but the shapes of one image never share a pixel (a shape that would touch an earlier one
is placed again, and dropped after ``PLACEMENT_TRIES``), so every instance is whole and its mask is
exactly what is painted. Each annotation has its category (1 disc, 2 square, 3 triangle), its box
``[x, y, w, h]`` (the mask's extent in pixels, pycocotools' convention), its area (pixel count) and
its mask as uncompressed COCO RLE (column-major run lengths, zeros first), which mmdet's
``LoadAnnotations`` and pycocotools read without conversion.
"""
import json
import os
from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image
from torchvision.ops import masks_to_boxes

from .shapes import SHAPE_CLASSES, SHAPE_HUES, shape_mask

COCO_CATEGORIES = [dict(id=i, name=name) for i, name in enumerate(SHAPE_CLASSES) if i > 0]
PLACEMENT_TRIES = 20


def mask_to_rle(mask: np.ndarray) -> Dict:
    """(H, W) bool mask -> uncompressed COCO RLE ``{'size': [H, W], 'counts': [...]}``: run lengths
    of the column-major (Fortran order) flattening, starting with a run of zeros (possibly 0)."""
    flat = np.asarray(mask, dtype=bool).flatten(order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return dict(size=[int(mask.shape[0]), int(mask.shape[1])], counts=[int(c) for c in counts])


def mask_to_box(mask: np.ndarray) -> List[float]:
    """(H, W) bool mask -> ``[x, y, w, h]``: its extent in whole pixels (w = last column - first + 1;
    torchvision's ``masks_to_boxes`` gives the first and last columns and rows)."""
    x0, y0, x1, y1 = masks_to_boxes(torch.from_numpy(np.asarray(mask, dtype=bool))[None])[0].tolist()
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def make_instance_sample(size: Tuple[int, int], rng: np.random.Generator
                         ) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """One (H, W, 3) uint8 image and its instances as (category id, (H, W) bool mask) pairs:
    1 to 4 shapes, pairwise disjoint."""
    h, w = size
    base = rng.uniform(60, 120) + rng.uniform(-15, 15, size=3)
    image = base + rng.normal(0, 18, size=(h, w, 3)) \
        + np.linspace(-25, 25, w)[None, :, None] * rng.choice([-1, 1])
    taken = np.zeros((h, w), bool)
    instances = []
    for _ in range(rng.integers(1, 5)):
        kind = int(rng.integers(1, len(SHAPE_CLASSES)))
        for _ in range(PLACEMENT_TRIES):
            mask = shape_mask(kind, size, rng)
            if mask.any() and not (mask & taken).any():
                break
        else:
            continue
        taken |= mask
        colour = np.array(SHAPE_HUES[kind]) * rng.uniform(150, 255)
        image[mask] = colour + rng.normal(0, 12, size=(int(mask.sum()), 3))
        instances.append((kind, mask))
    return np.clip(image, 0, 255).astype(np.uint8), instances


def make_shapes_coco(root: str, num_train: int = 240, num_val: int = 60,
                     size: Tuple[int, int] = (128, 128), seed: int = 0) -> str:
    """Write the data set under ``root`` (created if needed); returns ``root``. The same arguments
    give the same files."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f"num_train and num_val must be at least 1, got {num_train}, {num_val}")
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            image, instances = make_instance_sample(size, rng)
            name = f'{i:05d}.png'
            Image.fromarray(image).save(os.path.join(root, split, name))
            images.append(dict(id=i + 1, file_name=name, height=size[0], width=size[1]))
            for kind, mask in instances:
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, category_id=kind, iscrowd=0,
                    bbox=mask_to_box(mask), area=float(mask.sum()), segmentation=mask_to_rle(mask)))
        with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=COCO_CATEGORIES), f)
    return root
