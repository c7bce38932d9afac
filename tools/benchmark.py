"""Time, count and measure ViTPyramid / ViTAdapter against timm's and mmseg's ViTs, in one process.

    python tools/benchmark.py --model vit_base_patch16_224 --size 512 512
    python tools/benchmark.py --model vit_small_patch16_224 --variants simple adapter --mode train --memory
    python tools/benchmark.py --config configs/vitpyramid/upernet_vit-s16-augreg_8xb2-160k_ade20k-512x512.py \\
        --variants mmseg-f2p-segmentor segmentor --mode train --batch 2 --memory
    python tools/benchmark.py --model vit_small_patch16_224 --sizes 256 384 512 --json r.json --csv r.csv --plot r.png
    python tools/benchmark.py --model vit_small_patch16_224 --variants trunk eomt
    python tools/benchmark.py --eomt-figures    # EoMT against the trunk, UperNet and Mask2Former

The variants, modes, columns and measurements are described in ``tools/benchmarking/__init__.py``
(the package this entry point runs; ``python tools/benchmark.py --help`` lists the options).
"""
from benchmarking.cli import main

if __name__ == '__main__':
    main()
