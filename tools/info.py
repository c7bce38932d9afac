"""Describe a backbone: ``python tools/inspect.py MODEL_OR_CONFIG [options]`` or ``--list PATTERN``.

The same as the ``vitadapter-info`` console script (see ``vitadapter/info.py`` for the options).

This file shares its name with the standard library's ``inspect``. Every script in tools/ has
tools/ first on its import path, so ``import inspect`` (done by torch, numpy, ...) finds this file.
When imported (rather than run), it therefore loads the standard module and hands it over in
``sys.modules``, so importers get the real ``inspect``.
"""
import os
import sys

if __name__ != '__main__':
    import importlib.util
    import sysconfig
    _spec = importlib.util.spec_from_file_location(
        'inspect', os.path.join(sysconfig.get_paths()['stdlib'], 'inspect.py'))
    _stdlib_inspect = importlib.util.module_from_spec(_spec)
    sys.modules['inspect'] = _stdlib_inspect
    _spec.loader.exec_module(_stdlib_inspect)
else:
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    from vitadapter.info import main
    sys.exit(main())
