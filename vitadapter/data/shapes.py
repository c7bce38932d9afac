"""A small generated segmentation data set, so the demo and the tests need no download.

``make_shapes_dataset(root)`` writes ``img_dir/{train,val}/*.png`` and ``ann_dir/{train,val}/*.png``
(mmseg's layout): noisy backgrounds with discs, squares and triangles of random sizes, labelled by
shape. Each shape kind has its own hue (red-ish discs, green-ish squares, blue-ish triangles) with
random brightness and noise, so a small model learns the task in a few hundred CPU iterations.
numpy and PIL only; mmseg reads it as ``ShapesDataset`` (:mod:`vitadapter.engine.datasets`).
"""
import os
from typing import Tuple

import numpy as np
from PIL import Image

SHAPE_CLASSES = ('background', 'disc', 'square', 'triangle')
SHAPE_PALETTE = [[20, 20, 20], [230, 60, 60], [60, 200, 60], [60, 90, 230]]
SHAPE_HUES = {1: (1.0, 0.35, 0.3), 2: (0.3, 1.0, 0.35), 3: (0.3, 0.4, 1.0)}


def shape_mask(kind: int, size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = size
    r = rng.uniform(0.12, 0.28) * min(h, w)
    cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    if kind == 1:  # disc
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    if kind == 2:  # square
        return (abs(yy - cy) <= r * 0.85) & (abs(xx - cx) <= r * 0.85)
    # upright triangle: apex at the top, base at the bottom
    top, bottom = cy - r, cy + r
    half_width = (yy - top) / (2 * r) * r
    return (yy >= top) & (yy <= bottom) & (abs(xx - cx) <= half_width)


def make_sample(size: Tuple[int, int], rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 image and its (H, W) uint8 label map."""
    h, w = size
    base = rng.uniform(60, 120) + rng.uniform(-15, 15, size=3)  # greyish
    noise = rng.normal(0, 18, size=(h, w, 3))
    gradient = np.linspace(-25, 25, w)[None, :, None] * rng.choice([-1, 1])
    image = base + noise + gradient
    label = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(1, len(SHAPE_CLASSES)))
        mask = shape_mask(kind, size, rng)
        colour = np.array(SHAPE_HUES[kind]) * rng.uniform(150, 255)
        image[mask] = colour + rng.normal(0, 12, size=(int(mask.sum()), 3))
        label[mask] = kind
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_shapes_dataset(root: str, num_train: int = 160, num_val: int = 40,
                        size: Tuple[int, int] = (96, 96), seed: int = 0) -> str:
    """Write the data set under ``root`` (created if needed); returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(os.path.join(root, 'img_dir', split), exist_ok=True)
        os.makedirs(os.path.join(root, 'ann_dir', split), exist_ok=True)
        for i in range(count):
            image, label = make_sample(size, rng)
            Image.fromarray(image).save(os.path.join(root, 'img_dir', split, f'{i:04d}.png'))
            Image.fromarray(label).save(os.path.join(root, 'ann_dir', split, f'{i:04d}.png'))
    return root
