"""The float BinaryViT (PyTorch): configuration, layers, binarizers, checkpoints."""
