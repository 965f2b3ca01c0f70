# The two commands of the README:
#   make flow   set up, then run the whole flow on the embedded digits data set
#   make test   set up (Python packages, Icarus Verilog, ccache), then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: flow test test-slow formal setup tools lint-imports bench clean

$(BIN)/binaryvit: pyproject.toml setup.py requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/binaryvit

# Debian packages the simulators need: Icarus Verilog (second cocotb simulator), ccache
# (Verilator's C++ builds dominate test time on 2 cores) and lz4's header (Verilator's FST
# waveform writer).
tools:
	@command -v iverilog >/dev/null && command -v ccache >/dev/null && [ -f /usr/include/lz4.h ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog ccache liblz4-dev >/dev/null; }

flow: setup
	$(BIN)/binaryvit flow

# Slow board builds (ECP5, block-RAM overflow, ecpbram) are left to `make test-slow`; one
# real iCE40 build stays in the default run.
test: setup tools lint-imports
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

# The layering contracts of .importlinter (docs/architecture.md). import-linter reads a
# package from its folder, and setup.py maps the top-level folders under one namespace, so
# it checks a copy laid out as the installed package.
GRAPH = build/import-graph
lint-imports: setup
	rm -rf $(GRAPH) && mkdir -p $(GRAPH)
	cp -r binaryvit $(GRAPH)/binaryvit
	for folder in golden quantize hw sim; do cp -r $$folder $(GRAPH)/binaryvit/$$folder; done
	cd $(GRAPH) && $(abspath $(BIN))/lint-imports --config $(abspath .importlinter)

test-slow: setup tools
	$(BIN)/python -m pytest -n 2 -m slow $(PYTEST_ARGS)

# Formal proofs (SymbiYosys + Yices from PyPI): every kernel's stream protocol, the
# XNOR-popcount datapath and MVU against the ±1 dot product; ~5 min on one core.
formal: setup
	$(BIN)/python -m binaryvit.sim.formal

# Benchmark tables; the model-level ones read the flow's output folder (run `make flow` first).
bench: setup tools
	$(BIN)/python bench/bench_intref.py
	$(BIN)/python bench/bench_mvu.py
	$(BIN)/python bench/bench_quantize.py out/model.pt
	$(BIN)/python bench/bench_engine.py out/model.pt
	$(BIN)/python bench/bench_kernels.py out
	$(BIN)/python bench/bench_network.py out
	$(BIN)/python bench/bench_sim.py out
	$(BIN)/python bench/bench_boards.py out
	$(BIN)/python bench/bench_engine_blocks.py
	$(BIN)/python bench/bench_engine_board.py out/model.pt
	$(BIN)/python bench/bench_formal.py

clean:
	rm -rf $(VENV) out build .pytest_cache
