"""The variants the benchmark knows, by name: their ViTPyramid / ViTAdapter settings, the mmseg
baselines, EoMT, the ADE20K segmentors of the base model configs, the variants that need
``--config``, the frozen-trunk variants and their fine-tuned counterparts, and the defaults."""

VARIANTS = {
    'trunk': dict(),
    'feature2pyramid': dict(pyramid='feature2pyramid'),
    'simple': dict(pyramid='simple'),
    'simple-cp': dict(pyramid='simple', grad_checkpointing=True),
    'simple-frozen': dict(pyramid='simple', freeze_trunk=True),
    'vitdet': dict(pyramid='simple', out_channels=256),
    'vitdet-last': dict(pyramid='simple', out_channels=256, out_indices=(-1,)),
    'maps': dict(grid_mapping='maps'),
    'input': dict(grid_mapping='input'),
    'adapter': dict(),
    'adapter-cp': dict(grad_checkpointing=True),
    'adapter-cp-interactions': dict(grad_checkpointing='adapter'),  # injectors + extractors only
    # the DINOv3 segmentation adapter: no arch, so DINOv3's defaults (16 heads, value ratio 0.5)
    'adapter-extractors': dict(arch=None, type='DINOv3Adapter'),
}
# a frozen-trunk variant -> the same model fine-tuned (``--frozen-memory`` compares them)
FROZEN_PAIRS = {'simple-frozen': 'simple', 'adapter-extractors': 'adapter'}
FROZEN_MEMORY_VARIANTS = ['simple', 'simple-frozen', 'adapter', 'adapter-extractors']
FROZEN_MEMORY_MODEL = 'vit_small_patch16_dinov3'
FROZEN_MEMORY_BATCH = 2
# the official ViT-Adapter module run from a local copy of its code (see official_adapter.py)
OFFICIAL_VARIANTS = ('official-adapter',)
MMSEG_VARIANTS = ('trunk-f2p', 'trunk-mln', 'mmseg-vit', 'mmseg-f2p', 'mmseg-mln')
# EoMT on the trunk (backbone level: images -> per-class scores; see eomt.py)
EOMT_VARIANTS = ('eomt',)
# whole segmentors from the base model configs (configs/_base_/models/<file>), on the trunk of
# --model (or of the config's backbone), ADE20K's heads (see base_models.py)
BASE_SEGMENTORS = {'uper-segmentor': 'upernet_vitpyramid.py', 'm2f-segmentor': 'mask2former_vit.py',
                   'eomt-segmentor': 'eomt_vit.py'}
CONFIG_VARIANTS = ('backbone', 'segmentor', 'stock-head-segmentor', 'mmseg-f2p-segmentor',
                   'mmseg-mln-segmentor', 'adapter-segmentor')
ALL_VARIANTS = (tuple(VARIANTS) + OFFICIAL_VARIANTS + MMSEG_VARIANTS + EOMT_VARIANTS
                + tuple(BASE_SEGMENTORS) + CONFIG_VARIANTS)
DEFAULT_VARIANTS = ['trunk', 'feature2pyramid', 'simple']
DEFAULT_CONFIG_VARIANTS = ['trunk', 'backbone', 'segmentor']


def is_segmentor(variant: str) -> bool:
    """Whether ``variant`` is a whole mmseg segmentor (else images -> levels)."""
    return variant.endswith('segmentor')
