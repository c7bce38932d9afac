"""Pictures of what a backbone sees and what a segmentor predicts (numpy/PIL, no plotting library).

* :func:`pca_rgb`: the first three principal components of a (C, h, w) feature map as an RGB
  image (the picture DINOv2 made famous); :func:`feature_pca_panel` tiles the input image and the
  PCA of every pyramid level side by side.
* :func:`segmentation_panel`: the image, the prediction overlaid with the data set's palette and,
  when a label map is given, the error map (red: wrong, green: right, black: ignored).
"""
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image


def pca_rgb(features: torch.Tensor, clip: float = 1.0) -> np.ndarray:
    """(C, h, w) features -> (h, w, 3) uint8: components 1-3 as R, G, B, each stretched between
    its ``clip`` and ``100 - clip`` percentiles."""
    c, h, w = features.shape
    x = features.detach().float().reshape(c, h * w).t()
    x = x - x.mean(dim=0, keepdim=True)
    k = min(3, c, h * w)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    comps = (x @ v[:k].t()).numpy()
    if k < 3:
        comps = np.concatenate([comps, np.zeros((h * w, 3 - k), comps.dtype)], axis=1)
    lo = np.percentile(comps, clip, axis=0)
    hi = np.percentile(comps, 100 - clip, axis=0)
    rgb = np.clip((comps - lo) / np.maximum(hi - lo, 1e-8), 0, 1)
    return (rgb.reshape(h, w, 3) * 255).astype(np.uint8)


def _fit(image: np.ndarray, size, resample=Image.NEAREST) -> Image.Image:
    return Image.fromarray(image).resize((size[1], size[0]), resample)


def tile(panels: Sequence[Image.Image], gap: int = 4) -> Image.Image:
    """Panels of equal height side by side on a white background."""
    height = max(p.height for p in panels)
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    canvas = Image.new('RGB', (width, height), (255, 255, 255))
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.width + gap
    return canvas


def feature_pca_panel(image: np.ndarray, levels: Sequence[torch.Tensor]) -> Image.Image:
    """``image`` (H, W, 3) uint8 and one (1, C, h, w) tensor per level -> a tiled PIL image
    [image | PCA level 0 | PCA level 1 | ...], every panel H x W (levels upsampled, nearest)."""
    size = image.shape[:2]
    panels = [Image.fromarray(image)]
    panels += [_fit(pca_rgb(level[0]), size) for level in levels]
    return tile(panels)


def colorize(label: np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int = 255) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colours; ignored pixels black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)
    out = lut[label.astype(np.int64).clip(0, 255)]
    out[label == ignore_index] = 0
    return out


def segmentation_panel(image: np.ndarray, prediction: np.ndarray, palette: Sequence[Sequence[int]],
                       label: Optional[np.ndarray] = None, alpha: float = 0.5,
                       ignore_index: int = 255) -> Image.Image:
    """[image | prediction overlaid | error map (with ``label``)], each H x W."""
    overlay = (image * (1 - alpha) + colorize(prediction, palette) * alpha).astype(np.uint8)
    panels = [Image.fromarray(image), Image.fromarray(overlay)]
    if label is not None:
        error = np.zeros_like(image)
        valid = label != ignore_index
        error[valid & (label == prediction)] = (40, 160, 40)
        error[valid & (label != prediction)] = (220, 30, 30)
        panels.append(Image.fromarray(error))
    return tile(panels)
