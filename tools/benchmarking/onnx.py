"""``--onnx``: onnxruntime (CPU) vs PyTorch eager latency of a whole segmentor, in one process.

The config's segmentor (``mmseg.apis.init_model``, random weights: latency does not depend on
them; ``--cfg-options`` apply) is wrapped as pixels -> logits
(``vitadapter.engine.models.onnx_segmentor.SegmentorForExport``),
exported with dynamic batch/height/width (``vitadapter.export.export_onnx``) into a temporary
folder, checked once against PyTorch, then timed: forward passes under ``torch.no_grad`` and
``InferenceSession.run`` on the same input, alternated (one of each per repeat, after warm-up), so
that drifts of a shared machine hit both alike. Both use the same thread count (``--threads``,
else torch's). Printed: median times and the ratio onnxruntime / PyTorch.
"""
import statistics
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_CONFIG = 'configs/vitpyramid/upernet_vit-s16-augreg_8xb2-160k_ade20k-512x512.py'


def run_onnx_comparison(args) -> dict:
    """The ``--onnx`` benchmark for ``args`` (config, size, batch, repeats, warmup, threads)."""
    from mmseg.apis import init_model

    import vitadapter  # noqa: F401  (registers the backbones, heads and segmentor)
    from vitadapter.engine.models.onnx_segmentor import SegmentorForExport
    from vitadapter.export import check_onnx, export_onnx, onnx_session, run_onnx

    from mmengine.config import Config

    config = args.config or DEFAULT_CONFIG
    height, width = args.size[0]
    batch = args.batch or 1
    threads = torch.get_num_threads()
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(dict(args.cfg_options))
    cfg.model.backbone.update(pretrained=False, checkpoint=None)  # latency needs no weights
    model = SegmentorForExport(init_model(cfg, None, device='cpu'), 'logits').eval()
    images = torch.rand(batch, 3, height, width) * 255
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / 'segmentor.onnx', image_size=(height, width))
        session = onnx_session(path, threads=threads)
        parity = check_onnx(path, model, [images], session=session)[0]
        torch_times, onnx_times = [], []
        with torch.no_grad():
            for i in range(args.warmup + args.repeats):
                start = time.perf_counter()
                model(images)
                middle = time.perf_counter()
                run_onnx(session, images)
                end = time.perf_counter()
                if i >= args.warmup:
                    torch_times.append(middle - start)
                    onnx_times.append(end - middle)
    result = dict(config=config, size=[height, width], batch=batch, threads=threads,
                  repeats=args.repeats, torch_s=statistics.median(torch_times),
                  onnxruntime_s=statistics.median(onnx_times),
                  max_rel_error=max(parity.max_rel))
    result['ratio'] = result['onnxruntime_s'] / result['torch_s']
    print(f"{config} {batch}x3x{height}x{width}, {threads} threads, median of {args.repeats} "
          f"alternated: PyTorch eager {result['torch_s'] * 1e3:.0f} ms, onnxruntime "
          f"{result['onnxruntime_s'] * 1e3:.0f} ms, ratio onnxruntime / PyTorch "
          f"{result['ratio']:.3f} (max relative error {result['max_rel_error']:.2g})")
    return result
