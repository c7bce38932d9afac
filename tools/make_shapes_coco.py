"""Write the generated shapes instance set in COCO format (detection's data check, no download).

    python tools/make_shapes_coco.py OUT [--train 240] [--val 60] [--size 128] [--seed 0]

OUT/{train,val}/*.png and OUT/annotations/instances_{train,val}.json (discs, squares, triangles:
boxes, masks as COCO RLE, areas); see vitadapter.data.shapes_coco.
"""
import argparse
import sys

from vitadapter.data import make_shapes_coco


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output folder (created)')
    parser.add_argument('--train', type=int, default=240, help='training images')
    parser.add_argument('--val', type=int, default=60, help='validation images')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    make_shapes_coco(args.out, args.train, args.val, (args.size, args.size), args.seed)
    print(f'wrote {args.train} training and {args.val} validation images to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
