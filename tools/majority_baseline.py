"""mIoU of the trivial segmentor that predicts the training set's most frequent class everywhere.

    python tools/majority_baseline.py --data-root ../shared/data/camvid --num-classes 11

Reads ``ann_dir/train`` and ``ann_dir/val`` (mmseg layout, PNG label maps); label values
>= ``--num-classes`` (CamVid's void 11, 255) are ignored. The floor a trained model must beat.
"""
import argparse
import glob
import os
import sys

import numpy as np
from PIL import Image


def class_counts(folder: str, num_classes: int) -> np.ndarray:
    counts = np.zeros(num_classes, np.int64)
    files = sorted(glob.glob(os.path.join(folder, '*.png')))
    if not files:
        raise SystemExit(f"no PNG label maps in {folder}")
    for path in files:
        label = np.asarray(Image.open(path)).ravel()
        counts += np.bincount(label[label < num_classes], minlength=num_classes)[:num_classes]
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--num-classes', type=int, required=True)
    args = parser.parse_args(argv)
    n = args.num_classes
    train = class_counts(os.path.join(args.data_root, 'ann_dir', 'train'), n)
    val = class_counts(os.path.join(args.data_root, 'ann_dir', 'val'), n)
    majority = int(np.argmax(train))
    # predicting `majority` on every valid pixel: IoU = its pixels / all valid pixels, others 0
    iou = np.zeros(n)
    iou[majority] = val[majority] / val.sum()
    print(f"majority class in train: {majority} ({train[majority] / train.sum():.1%} of labelled pixels)")
    print(f"val: aAcc {100 * val[majority] / val.sum():.2f}, mIoU {100 * iou.mean():.2f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
