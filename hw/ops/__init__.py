"""One home per operation of the integer program: a spec per op (found by op name through
``binaryvit.hw.ops.registry.spec_of``) that owns its tensor shapes, fold candidates and
lanes, cycles, resource cost, word timing, FIFO demands, kernel construction and integer
model. See ``docs/architecture.md`` ("Adding an op")."""
