"""Convert ViT weights from any supported source to a timm-layout file:
``python tools/convert_weights.py SRC DST [--to timm|safetensors] [--prefix P] [--model NAME]``.

The same as the ``vitadapter-convert`` console command (see ``vitadapter/convert.py`` for the options).
"""
import os
import sys

try:
    import vitadapter  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vitadapter.convert import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
