"""An mmseg segmentor as one traceable function of the images, for ONNX export.

:class:`SegmentorForExport` wraps a built segmentor (``mmseg.apis.init_model``): pixels in, logits
or a label map out, with the segmentor's own pieces and nothing else:

* the data preprocessor's channel flip (``bgr_to_rgb``) and normalisation (``mean``/``std``), so
  the graph takes the pixels mmseg's loader gives (float, 0-255, BGR as ``cv2.imread`` reads);
* ``encode_decode``: the backbone, neck and the decode head's ``predict`` (its logits resized to
  the input, as mmseg's whole-image inference does, any head: UperNet, FPN, Mask2Former...), or
  EoMT's / PMT's network and its per-class scores (``EoMTSegmentor``);
* ``'labels'``: the arg-max over classes (or ``sigmoid > threshold`` for a one-channel head),
  as mmseg's ``postprocess_result``.

Whole-image inference only: a ``test_cfg`` with ``mode='slide'`` runs crops in a Python loop over
the input size, which a size-independent graph cannot hold; the export runs the whole image.
"""
import torch
import torch.nn as nn

OUTPUTS = ('logits', 'labels')


class SegmentorForExport(nn.Module):
    """images (B, 3, H, W) float pixels -> logits (B, K, H, W) or labels (B, H, W) int64.

    Args:
        segmentor: an mmseg ``EncoderDecoder`` (or ``ViTEncoderDecoder``), in eval mode.
        output: 'logits' or 'labels'.
    """

    def __init__(self, segmentor: nn.Module, output: str = 'logits'):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}")
        if not hasattr(segmentor, 'encode_decode'):
            raise ValueError(f"{type(segmentor).__name__} is not an mmseg encoder-decoder "
                             f"segmentor (no encode_decode); export its backbone instead")
        self.segmentor = segmentor
        self.output = output
        pre = segmentor.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, 'channel_conversion', False))
        self.normalize = getattr(pre, 'mean', None) is not None  # the buffer exists iff it normalises
        if self.normalize:
            self.register_buffer('mean', pre.mean.detach().clone().view(1, -1, 1, 1), persistent=False)
            self.register_buffer('std', pre.std.detach().clone().view(1, -1, 1, 1), persistent=False)
        self.feature_info = getattr(getattr(segmentor, 'backbone', None), 'feature_info', None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if self.bgr_to_rgb:
            x = x.flip(1)
        if self.normalize:
            x = (x - self.mean) / self.std
        size = tuple(images.shape[-2:])
        # one meta for the batch (heads read the first; a list per image would fix the batch size)
        metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
        logits = self.segmentor.encode_decode(x, metas)  # backbone + head, or EoMT's network
        if self.output == 'logits':
            return logits
        if logits.shape[1] == 1:
            return (logits.sigmoid() > self.segmentor.decode_head.threshold).squeeze(1).long()
        return logits.argmax(1)
