"""binaryvit: a binary vision transformer, from PyTorch to bit-exact FPGA hardware.

Sub-packages (each a top-level folder of the repository):
    binaryvit.golden    PyTorch BinaryViT and the integer reference of every hardware op
    binaryvit.quantize  trained checkpoint -> integer model -> weight ROM images
    binaryvit.hw        Amaranth HDL generators (streaming kernels, network top)
    binaryvit.sim       cocotb + Verilator / Icarus harness
"""
__version__ = "0.1.0"
