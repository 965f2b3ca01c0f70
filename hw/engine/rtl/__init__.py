"""The engine's RTL (Amaranth): memory, sequencer and execution units that run a compiled
program word for word like the instruction-set simulator (``docs/engine-rtl.md``)."""
