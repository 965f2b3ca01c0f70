"""The engine on a board: the bitstream's design constants, the image runner, the board top."""
