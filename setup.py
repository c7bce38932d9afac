"""vitadapter: any timm Vision Transformer as a dense-prediction backbone (PyTorch core; mmsegmentation extra)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "vitadapter" / "version.py").read_text()).group(1)

setup(
    name="vitadapter",
    version=VERSION,
    description="Any timm Vision Transformer as a multi-scale dense-prediction backbone (PyTorch; mmseg 1.x extra)",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["vitadapter", "vitadapter.*"]),
    package_data={"vitadapter": ["assets/*.jpg"]},
    # The core: torch + timm (+ safetensors). Exact tested versions: tools/constraints*.txt.
    install_requires=[
        # tested at both ends (CI's core lanes): 2.6.0 and 2.14.1 (torch 2.15 has no torchvision
        # yet). 2.6 is the first with torch.serialization.get_unsafe_globals_in_checkpoint, which
        # safe reading of pickled checkpoints needs.
        "torch>=2.6,<2.15",
        "torchvision",  # timm imports it
        # tested at both ends (CI): 1.0.16 is the first whose forward_intermediates honours grad
        # checkpointing (the models the block API does not run; tests/trunk/test_trunk_parity.py
        # checks the block API against timm's own forward); 1.0.20 brings DINOv3
        "timm>=1.0.16,<=1.0.31",
        "packaging",  # version comparisons
        "safetensors",
        "numpy",
        "pillow",
        "scipy",  # Mask2Former's Hungarian matching (scipy.optimize.linear_sum_assignment)
    ],
    extras_require={
        # mmsegmentation integration on the maintained OpenMMLab fork (same import names; numpy 2;
        # nothing compiles). Do not mix with the upstream packages below in one environment.
        "mmseg": [
            "onedl-mmsegmentation>=1.4,<1.5",
            "onedl-mmcv>=2.3,<2.4",
            "onedl-mmengine>=0.10.8,<0.11",
            "ftfy",  # mmseg's text models import it at registration
            "regex",
        ],
        # ... or on OpenMMLab's last releases (mmcv 2.1 must be built with its ops: see README).
        "mmseg-upstream": [
            "mmsegmentation>=1.2,<1.3",
            "mmcv>=2.0,<2.2",  # mmsegmentation 1.2.x asserts mmcv < 2.2
            "mmengine>=0.10,<1.0",
            "mmdet>=3.3,<3.4",  # mmseg's own Mask2FormerHead; mmdet 3.3 accepts mmcv 2.1
            "ftfy",
            "regex",
        ],
        # ONNX export (vitadapter.export, tools/export_onnx.py): torch's dynamo exporter needs
        # onnxscript; onnxruntime checks the graph. onnx brings ml_dtypes: 0.5.x on numpy 1.26
        # (the upstream stack), 0.7 on numpy 2; the constraints files pin both.
        "onnx": [
            "onnx>=1.18",
            "onnxscript>=0.5",
            "onnxruntime>=1.20",
        ],
        "test": [
            "pytest",
            "pyyaml",  # tests/test_model_zoo.py reads the metafiles
            # parity tests build the original implementations of the weights we convert; tested at
            # both ends (CI): 4.57.6 (pinned in tools/constraints*.txt) and 5.25.0
            "transformers>=4.57,<=5.25",
        ],
    },
    entry_points={"console_scripts": ["vitadapter-info = vitadapter.info:main",
                                      "vitadapter-convert = vitadapter.convert:main"]},
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
