"""External memory for the engine: the SDR SDRAM chip's timing, the controller behind the
engine's memory port, and (``binaryvit.hw.engine.traffic``) what crosses that port."""
