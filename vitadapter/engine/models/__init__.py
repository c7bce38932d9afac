"""Model code registered in mmseg: ``ViTEncoderDecoder`` (with the ``in_channels='auto'`` lookup),
``FastUPerHead``, ``LinearProbeHead``, ``TorchMask2FormerHead``, and the segmentor-as-one-function
wrapper the ONNX export traces."""
