"""Time, count and measure ViTPyramid / ViTAdapter against timm's and mmseg's ViTs, in one process.

    python tools/benchmark.py --model vit_base_patch16_224 --size 512 512
    python tools/benchmark.py --model vit_small_patch14_reg4_dinov2 --variants trunk maps input
    python tools/benchmark.py --model vit_small_patch16_224 --variants simple adapter --mode train --memory
    python tools/benchmark.py --model vit_base_patch16_224 --variants trunk simple mmseg-f2p mmseg-mln
    python tools/benchmark.py --config configs/vitpyramid/upernet_vit-s16-augreg_8xb2-160k_ade20k-512x512.py \\
        --variants mmseg-f2p-segmentor segmentor --mode train --batch 2 --memory
    python tools/benchmark.py --model vit_base_patch16_224 --variants simple --dtype fp32 bf16 --compile both
    python tools/benchmark.py --model vit_small_patch16_224 --sizes 256 384 512 --json r.json --csv r.csv --plot r.png
    python tools/benchmark.py --frozen-memory                       # DINOv3-S, 2x3x512x512
    python tools/benchmark.py --frozen-memory --size 256 256 --repeats 1 --warmup 0 --no-flops
    python tools/benchmark.py --model vit_small_patch16_224 --variants trunk eomt
    python tools/benchmark.py --model vit_small_patch16_224 --variants m2f-segmentor eomt-segmentor \\
        --mode train --batch 2 --label-classes 10 --memory
    python tools/benchmark.py --eomt-figures                        # EoMT's four figures, 512x512

Input: a timm model name (``--model``) or an mmseg config (``--config``; its backbone's
``model_name`` is the ViT of the model-level variants, its model is the whole segmentor).

Variants, backbone level (the ViT is ``--model``, or the config backbone's):
  trunk            the timm ViT alone (the chosen blocks, what ViTPyramid's trunk computes)
  feature2pyramid  ViTPyramid with the channel-keeping pyramid, one block per level
  simple           ViTPyramid's default: channel-halving pyramid (C/4, C/2, C, C), one block per level
  simple-cp        the same with grad checkpointing of the trunk's blocks
  simple-frozen    the same on a frozen trunk (``freeze_trunk=True``: only the pyramid trains)
  vitdet           the ViTDet pyramid (1x1 + 3x3 output convs to 256 channels), one block per level
  vitdet-last      the ViTDet pyramid fed by the last block only, as in ViTDet
  maps / input     patch-14 trunks only: the two grid mappings (default pyramid)
  adapter          ViTAdapter with the paper's settings for the trunk's width (192: Tiny, 384: Small,
                   768: Base, 1024: Large; other widths: Small's), 4 interactions
  adapter-cp       the same with grad checkpointing of blocks, injectors and extractors
  adapter-extractors
                   the DINOv3 segmentation adapter: ``DINOv3Adapter`` with DINOv3's defaults
                   (16 heads, value ratio 0.5, the blocks [2, 5, 8, 11] of 12): the frozen trunk
                   run once without gradients, extractors only
  official-adapter the official ViT-Adapter backbone module (czczup/ViT-Adapter) run from a local copy
                   of its code (``--official-adapter-dir DIR`` or $VITADAPTER_OFFICIAL_ADAPTER_DIR),
                   with its PyTorch deformable-attention fallback; its weights are loaded into the
                   ``adapter`` variants (printed: parity, ``adapter / official-adapter`` and
                   ``adapter / simple`` ratios); see ``official_adapter.py``
  trunk-f2p        the timm trunk + mmseg's ``Feature2Pyramid`` (BN)
  trunk-mln        the timm trunk + mmseg's ``MultiLevelNeck`` (C channels at every level)
  mmseg-vit        mmseg's own ``VisionTransformer`` with the trunk's width, depth (up to the last
                   chosen block), heads, MLP ratio, patch, class token and chosen blocks
  mmseg-f2p        mmseg-vit + ``Feature2Pyramid``
  mmseg-mln        mmseg-vit + ``MultiLevelNeck``
  eomt             EoMT (``vitadapter.models.EoMT``) on the trunk with ADE20K's settings of
                   configs/_base_/models/eomt_vit.py: 150 classes, 100 queries joining the last 4
                   blocks (the trunk's own patch: the config's DINOv2 re-patching to 16 is not
                   applied). Forward: ``semantic_segmentation`` with every mask probability 0
                   (annealing done): the blocks over queries + tokens, one prediction (class head,
                   mask MLP, the scale blocks to stride 4, the mask einsum), class and mask logits
                   met at stride 4, resized to the input. Train: every prediction (one per query
                   block and the final one) with masked attention at ``--eomt-mask-prob``
                   (default 1: every query masked in every block, the expensive case)
Segmentor variants on the trunk (``--model``, or the config's), no config needed: the ADE20K
models of the base model configs (150 classes, their head settings and losses), no weights,
stochastic depth off:
  uper-segmentor   configs/_base_/models/upernet_vitpyramid.py: ViTPyramid (its default pyramid and
                   blocks: 4 evenly spaced ending with the last, or the config's) + ``FastUPerHead``
                   (512 channels) + FCN auxiliary head (256 channels, loss weight 0.4)
  m2f-segmentor    configs/_base_/models/mask2former_vit.py: ViTPyramid + ``TorchMask2FormerHead``
                   (100 queries, 256 channels, 6 deformable encoder layers, 9 decoder layers, losses
                   2 / 5 / 5, no-object 0.1, 12544 points per mask)
  eomt-segmentor   configs/_base_/models/eomt_vit.py: ``EoMTSegmentor`` of the ``eomt`` network
                   (Mask2Former's matching and losses on every prediction, 12544 points per mask),
                   inference in mmseg's ``whole`` mode (the config's ``slide`` at its 512 crop is
                   one window at 512x512). Train: ``set_iteration(0, [--eomt-mask-prob] * 4)`` before
                   the steps (what ``MaskAnnealingHook`` does in a run; default probability 1:
                   masked attention on, the expensive case); forward: probabilities 0
Variants that need ``--config``:
  backbone         the config's backbone as configured (stochastic depth off)
  segmentor        the config's whole model (mmseg ``EncoderDecoder``, its heads and losses; an
                   ``EoMTSegmentor`` config: its network, mask probabilities as ``eomt-segmentor``'s)
  stock-head-segmentor
                   the config's model with mmseg's own heads in place of vitadapter's equivalent
                   ones (``FastUPerHead`` -> ``UPerHead``: same parameters, same function)
  mmseg-f2p-segmentor / mmseg-mln-segmentor
                   mmseg's native segmentor: the config's model with its backbone replaced by
                   mmseg-f2p / mmseg-mln and mmseg's own heads (same head widths; head in_channels
                   set to the new backbone's)
  adapter-segmentor
                   the config's model with its backbone replaced by ViTAdapter (same heads)

Modes:
  forward  (default) a forward pass in eval mode without autograd; a segmentor runs its data
           preprocessor and ``mode='tensor'`` (``--segmentor-forward predict``: ``test_step``,
           i.e. prediction, resizing and argmax);
  train    one training step in train mode. Backbone variants: forward, backward of the mean
           square of every output level (a stand-in for the heads, the same for all variants),
           AdamW step. Segmentors: mmseg's ``train_step`` on random images and random labels
           (real losses of every head, backward, AdamW step; every pixel's label drawn from every
           class, or with ``--label-classes N`` from N classes drawn per image: the mask losses
           match the queries to one target per class present; ADE20K's images hold 10.5 object
           classes on average, Zhou et al. 2019).
           Stochastic depth is off in every variant so that they do the same work.
Runs alternate between variants (A, B, C, A, B, C, ...) so that drift in the machine's speed hits
every variant alike; the median of --repeats runs is reported, and its ratio to the first variant.
Several ``--dtype`` values, or ``--compile both``, multiply the variants: ``simple[bf16]``,
``simple[compiled]`` are then timed alternately with ``simple``.

Options: ``--dtype fp32|bf16|fp16`` (autocast; fp16 training on a GPU uses loss scaling),
``--channels-last``, ``--compile`` (``torch.compile`` of the model, of a segmentor's backbone,
neck and heads; the first warm-up call compiles, its time is reported as ``first s``),
``--grad-checkpointing`` (every variant that can: ViTPyramid, ViTAdapter, mmseg's ViT ``with_cp``),
``--batch``, ``--device cpu|cuda``, ``--size H W`` (repeatable) or ``--sizes N [N ...]`` (squares),
``--label-classes N`` (segmentors' random labels: N classes per image), ``--eomt-mask-prob P``
(EoMT's masked attention in training steps, 0 to 1, default 1).

Columns: seconds (median), ratio (to the first variant), img/s (batch / seconds), GFLOP (of the
measured call, forward or whole training step, counted by ``torch.utils.flop_counter``, one
multiply-add = 2 FLOPs) and its ratio (to the first variant's; JSON ``flop_ratio``), GFLOP/s
achieved, params M (all parameters).
FLOPs: torch's counter counts matmuls, convolutions (transposed ones too) and the fused attention
kernels of CUDA; it does not know the CPU's fused attention (``_scaled_dot_product_flash_attention
_for_cpu`` and its backward), so this tool adds them with torch's own attention formulas.
Not counted: element-wise work (norms, activations, softmax outside the fused kernels),
interpolation, pooling, and ViTAdapter's deformable-attention sampling (its linear layers are).

--frozen-memory: peak training memory with a frozen vs a fine-tuned trunk. It sets ``--mode train
--memory`` and, unless given, ``--model vit_small_patch16_dinov3 --batch 2 --variants simple
simple-frozen adapter adapter-extractors`` (input 512x512 unless ``--size``). Under the table, each
frozen variant measured beside its fine-tuned counterpart (``simple-frozen`` / ``simple``,
``adapter-extractors`` / ``adapter``) gets a line: its peak MiB and call MiB over the counterpart's,
and the trainable parameters of both; the JSON has them as ``peak_vs_finetuned`` and
``call_vs_finetuned`` (any run measuring memory of such a pair prints them).

--eomt-figures: EoMT's four figures, three runs one after another in one process (each run's
variants alternated, its table printed), then one line per figure with its target (ViT-S/16's and
ViT-B/16's; met or MISSED):
  1. ``trunk eomt``, forward, ``vit_small_patch16_224`` and ``vit_base_patch16_224``: EoMT inference
     / the trunk alone, targets 1.25 and 1.2, and the time ratio within 1.1x of the FLOP ratio;
  2. ``uper-segmentor eomt-segmentor``, forward, ``--segmentor-forward predict`` (images to per-pixel
     classes), ViT-S/16: EoMT inference / UperNet inference, target 0.4;
  3. ``m2f-segmentor eomt-segmentor``, train, ``--memory``, ViT-S/16: EoMT training step /
     Mask2Former training step, target 0.6, and (4.) peak training memory, target 0.6.
Unless given: input 512x512, ``--batch 2``, ``--label-classes 10``, masked attention at 1 in EoMT's
training steps; ``--model`` / ``--config``: every run on that trunk alone. The JSON holds every row
(tagged ``run`` and ``model``) and ``figures``. The same figures, one command each::

    python tools/benchmark.py --model vit_small_patch16_224 --variants trunk eomt --batch 2
    python tools/benchmark.py --model vit_base_patch16_224 --variants trunk eomt --batch 2
    python tools/benchmark.py --model vit_small_patch16_224 --variants uper-segmentor eomt-segmentor \\
        --segmentor-forward predict --batch 2
    python tools/benchmark.py --model vit_small_patch16_224 --variants m2f-segmentor eomt-segmentor \\
        --mode train --memory --batch 2 --label-classes 10

--memory: peak memory per variant, each in a fresh process. On a CPU from the kernel's resident-set
counters (``VmRSS``, and ``VmHWM``, the peak, reset through ``/proc/self/clear_refs`` before the
measured call; Linux only); on a GPU from ``torch.cuda.max_memory_allocated``. After the model is
built and one warm-up call made (AdamW's state exists), gradients are freed and one call is measured:
  peak MiB   the process's peak during the call minus its memory before the model was built:
             all the model costs at its peak (weights, optimizer state, gradients, activations);
  call MiB   the peak during the call minus the memory just before it: activations,
             gradients and temporaries of the call.
glibc is told to return every block of 64 KiB or more to the system when freed
(``MALLOC_MMAP_THRESHOLD_``), so freed tensors do not hide in malloc's cache.

Output: a ``machine:`` line (CPU model, its vector/matrix instruction sets, torch, threads, MKL and
oneDNN), then one table per input size; ``--json`` / ``--csv`` files (one row per size and variant;
the JSON also holds the machine record under ``machine``);
``--plot out.png``: time (and peak memory and GFLOP when measured) against the input size.
``--profile N``: after timing, the N most expensive operators of one call of every variant
(torch.profiler, self time), to see where the time goes.

Modules (one idea each; ``tools/benchmark.py`` runs :func:`cli.main`):
  cli                the command line: options, their checks, the run
  catalogue          the variants by name, and the defaults
  settings           the timed columns (variant x dtype x compiled) and their labels
  config             the ``--config`` file, loaded once per process
  vit                the ViT the backbone-level variants share, and its shape
  mmseg_baselines    mmseg's ViT and necks of the same shape
  backbone_variants  building a backbone-level variant
  segmentors         the segmentor variants' configs and a random batch
  base_models        the ``uper-``, ``m2f-``, ``eomt-segmentor`` configs: base models on the trunk
  eomt               the ``eomt`` variant, EoMT's mask probabilities in forward and train mode
  steps              one call: forward pass or training step
  cases              a setting built on the device, ready to time
  timing             alternated timing, medians
  flops              FLOP counting
  memory             peak memory of one call, in a fresh process
  profiling          ``--profile``: the most expensive operators
  runner             one input size: every setting timed, counted, measured -> result rows
  frozen             frozen vs fine-tuned: the memory ratios of the frozen variants
  eomt_figures       ``--eomt-figures``: its runs, the figures and their targets
  official_adapter   the official ViT-Adapter module (import shims), shared weights, parity, ratios
  machine            the machine record (CPU, instruction sets, torch, threads, MKL, oneDNN)
  table, files, plot the printed tables, ``--json`` / ``--csv``, ``--plot``
  docs               the tables of tools/README.md from the ``--json`` files (tools/benchmark_tables.py)
"""
