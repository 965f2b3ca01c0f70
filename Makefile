# The two commands of the README:
#   make flow   set up, then run the whole flow on the embedded digits data set
#   make test   set up (Python packages, Icarus Verilog, ccache), then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: flow test setup tools bench clean

$(BIN)/binaryvit: pyproject.toml setup.py requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/binaryvit

# Debian packages the simulators need: Icarus Verilog (second cocotb simulator) and ccache
# (Verilator's C++ builds dominate test time on 2 cores).
tools:
	@command -v iverilog >/dev/null && command -v ccache >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog ccache >/dev/null; }

flow: setup
	$(BIN)/binaryvit flow

test: setup tools
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: setup tools
	@for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) out build .pytest_cache
