"""vitadapter: any timm Vision Transformer as a dense-prediction backbone for mmsegmentation."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "vitadapter" / "version.py").read_text()).group(1)

setup(
    name="vitadapter",
    version=VERSION,
    description="Any timm Vision Transformer as a multi-scale dense-prediction backbone (mmseg 1.x)",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["vitadapter", "vitadapter.*"]),
    package_data={"vitadapter": ["assets/*.jpg"]},
    install_requires=[
        # Exact versions live in tools/constraints.txt; these are the supported ranges.
        "torch>=2.1",
        "timm>=1.0.9",  # forward_intermediates on every ViT family we wrap
        "mmengine>=0.10,<1.0",
        "mmcv>=2.0,<2.2",  # mmsegmentation 1.2.x asserts mmcv < 2.2
        "mmsegmentation>=1.2,<1.3",
        "safetensors",
        "numpy",
        "pillow",
        "ftfy",
        "regex",
    ],
    extras_require={"test": [
        "pytest",
        # parity tests build the original implementations of the weights we convert
        "transformers==4.57.6",
        "mmpretrain==1.2.0",
    ]},
    entry_points={"console_scripts": ["vitadapter-info = vitadapter.info:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
