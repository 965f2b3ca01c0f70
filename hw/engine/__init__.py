"""The layer-sequential engine: one set of units runs a whole BinaryViT, layer after layer.

``config`` describes an engine (XNOR array, vector lanes, memory banks), ``isa`` its
instructions, ``encoding`` their binary form, ``compiler`` turns an
:class:`~binaryvit.golden.intref.intmodel.IntModel` into a :class:`~binaryvit.hw.engine.program.Program`
(fused instructions, memory plan, parameter payload, cycle model) and ``iss`` runs a program
on its memory image. ``docs/engine.md`` is the specification the RTL is built from.
The boot-time blocks for the iCE40UP5K live beside them: ``spram`` (``SB_SPRAM256KA`` banks),
``parameter_image`` (the image format), ``flash_reader`` / ``loader*`` (SPI-flash boot
loader) and ``vector_multiply`` (the ``SB_MAC16`` multiply-round-shift);
``docs/engine-hardware.md`` describes them.
"""
