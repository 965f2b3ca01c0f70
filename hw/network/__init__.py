"""The network planner: tensors, folding, timing, FIFO sizing, the accelerator top, and the
``binaryvit generate`` stage."""
