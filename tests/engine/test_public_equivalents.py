"""The public mm* API vitadapter reads where it used to read private names (see vitadapter.compat's
table): each still means what vitadapter takes it to mean on the installed stack."""
import numpy as np
import torch


def test_fsdp_strategy_from_the_registry_is_mmengines():
    from mmengine.registry import STRATEGIES

    from vitadapter.engine import TrunkFSDPStrategy
    base = STRATEGIES.get('FSDPStrategy')
    assert base is not None and base.__name__ == 'FSDPStrategy' and issubclass(TrunkFSDPStrategy, base)


def test_history_buffer_data_is_its_history():
    from mmengine.logging.history_buffer import HistoryBuffer

    from vitadapter.engine.training.checkpoint_safety import _reduce_history_buffer
    buffer = HistoryBuffer()
    for value, count in ((1.0, 1), (2.5, 2), (4.0, 1)):
        buffer.update(value, count)
    logs, counts = buffer.data
    assert np.asarray(logs).tolist() == [1.0, 2.5, 4.0] and np.asarray(counts).tolist() == [1, 2, 1]
    rebuild, args = _reduce_history_buffer(buffer)
    copy = rebuild(*args)
    assert np.asarray(copy.data[0]).tolist() == [1.0, 2.5, 4.0] and copy.max_length == buffer.max_length


def test_the_preprocessors_mean_buffer_says_whether_it_normalises():
    from mmseg.models.data_preprocessor import SegDataPreProcessor

    from vitadapter.engine.models.onnx_segmentor import SegmentorForExport
    normalising = SegDataPreProcessor(mean=[1.0, 2.0, 3.0], std=[2.0, 2.0, 2.0], bgr_to_rgb=True)
    plain = SegDataPreProcessor()
    assert isinstance(getattr(normalising, 'mean', None), torch.Tensor)
    assert getattr(plain, 'mean', None) is None

    class Segmentor(torch.nn.Module):
        def __init__(self, pre):
            super().__init__()
            self.data_preprocessor, self.decode_head, self.test_cfg = pre, None, {}
            self.backbone = torch.nn.Identity()

        def extract_feat(self, x):
            return x

        def encode_decode(self, x, metas):
            return x
    assert SegmentorForExport(Segmentor(normalising)).normalize
    assert not SegmentorForExport(Segmentor(plain)).normalize
