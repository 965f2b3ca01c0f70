"""Importing checkpoints made by the paper's official code (Phuoc-Hoan-Le/BinaryViT @ ca16a43).

One concept per module:

``checkpoint_file``  reads their file without running pickled code and finds the state_dict
                     and training flags (full training checkpoint, ``{'model': ...}`` or a
                     bare state_dict)
``flags``            the training flags that shape the model (bit widths, norms, pooling
                     branches, LayerScale), from their ``args`` or from the keys themselves
``vit_config``       their ``ViTConfig`` JSON + the flags -> our :class:`BinaryViTConfig`
``key_map``          their parameter names and values -> ours (RPReLU, LayerScale,
                     attention clip, patch-merge ``move``)
``sign_ties``        weights whose official sign is 0 (ternary), which ours cannot express
``importer``         the whole import: read, check, map, write our checkpoint atomically
"""
