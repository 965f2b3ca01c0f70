"""Checkpoint → integer model → weight ROMs (``binaryvit quantize``); see docs/quantization.md.

Entry points: :func:`binaryvit.quantize.quantizer.quantize_checkpoint` and
:func:`~binaryvit.quantize.quantizer.quantize_model`; the model itself is
:class:`binaryvit.golden.intref.intmodel.IntModel`. Submodules are imported explicitly (this
package stays light, so ``golden.int_network`` can import ``quantize.intmodel``).
"""
