"""The ``--config`` file, loaded once per process and prepared as vitadapter's tools prepare it."""
import argparse
import os
from typing import Dict

_CONFIG_CACHE: Dict[tuple, object] = {}


def load_config(args: argparse.Namespace):
    """The ``--config`` file (with ``--cfg-options``), prepared by vitadapter: head in_channels
    'auto' filled from the backbone's feature_info. Cached per process."""
    if args.config is None:
        raise ValueError("this variant needs --config (an mmseg config file)")
    options = tuple(sorted((args.cfg_options or {}).items()))
    key = (os.path.abspath(args.config), repr(options))
    if key not in _CONFIG_CACHE:
        from vitadapter.engine import load_config as load, prepare_config
        cfg = load(args.config, dict(args.cfg_options or {}))
        backbone = cfg.model.get('backbone', {})
        if 'pretrained' in backbone or 'checkpoint' in backbone:  # timing needs no weights
            backbone.update(pretrained=False, checkpoint=None)
        _CONFIG_CACHE[key] = prepare_config(cfg)
    return _CONFIG_CACHE[key]
