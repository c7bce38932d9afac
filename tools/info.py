"""Describe a backbone: ``python tools/info.py MODEL_OR_CONFIG [options]`` or ``--list PATTERN``.

The same as the ``vitadapter-info`` console script (see ``vitadapter/info.py`` for the options).
"""
import sys

from vitadapter.info import main

if __name__ == '__main__':
    sys.exit(main())
