"""Imported by a training config's ``custom_imports`` (not a test module): ``CrashAfterIter`` ends
the process with exit code 17 right after iteration ``iteration`` (and its checkpoint), as a killed
job would, so the resume tests can restart from there."""
import os

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class CrashAfterIter(Hook):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os._exit(17)
