"""Imported by a training config's ``custom_imports`` (not a test module): everything the run builds
afterwards is float64.

mmseg's ``SegDataPreProcessor`` normalises with its ``mean``/``std`` buffers, which are then float64
too, so the images reach the model in float64 (uint8 -> float is exact) and the whole step, the
losses and the optimizer run in double precision. Comparisons between two runs that differ only in
summation order (one process with batch 4 vs two DDP processes with batch 2) then differ by float64
rounding, many orders of magnitude below any real discrepancy, on any machine.
"""
import torch

torch.set_default_dtype(torch.float64)
