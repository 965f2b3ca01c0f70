"""The layer-sequential engine: one set of units runs a whole BinaryViT, layer after layer.

``config`` describes an engine (XNOR array, vector lanes, memory banks), ``isa`` its
instructions, ``encoding`` their binary form, ``compiler`` turns an
:class:`~binaryvit.golden.intref.intmodel.IntModel` into a :class:`~binaryvit.hw.engine.program.Program`
(fused instructions, memory plan, parameter payload, cycle model) and ``iss`` runs a program
on its memory image. ``docs/engine.md`` is the specification the RTL is built from.
"""
