"""Training pieces for mmengine's runners: the layer-decay optimizer constructor, CPU mixed
precision, CPU-synchronised BN, FSDP with trunk blocks as units, and weights_only-safe checkpoints."""
