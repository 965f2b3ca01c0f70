"""Boards: definitions, bitstream builds, the UART wrapper and in-bitstream ROM updates."""
