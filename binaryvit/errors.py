"""The project's exceptions: messages a user can act on, printed by the CLI in one line."""


class BinaryVitError(Exception):
    """Base of every error the CLI reports as a one-line message and a non-zero exit."""


class ConfigError(BinaryVitError):
    """An unknown config name, or parameters that contradict each other."""


class CheckpointError(BinaryVitError):
    """A missing, corrupt or incompatible checkpoint or integer model."""


class DataError(BinaryVitError):
    """Input data of the wrong shape, channels or labels."""


class FoldingError(BinaryVitError):
    """A (pe, simd) folding that does not divide a dimension, or a target it cannot meet."""


class OverflowProofError(BinaryVitError):
    """An accumulator or intermediate that can overflow its chosen width."""


class OutputPathError(BinaryVitError):
    """An output path that exists already (without --force) or cannot be written."""


class ToolError(BinaryVitError):
    """An external tool (Verilator, Yosys, nextpnr) missing or failing."""


class SimulationError(BinaryVitError):
    """An RTL simulation that stalled (no stream moved for far longer than the network's
    latency), produced X bits, or gave no result."""


class CompileError(BinaryVitError):
    """An integer model the engine compiler cannot map onto an engine: an operation it has no
    instruction for, a format wider than its datapath, or tensors that do not fit its
    memories (the message names the step, the bytes needed and the bytes available)."""


class ParameterImageError(BinaryVitError):
    """An engine parameter image that is not one (wrong magic or version), belongs to
    another bitstream (design id), is truncated, or fails its checksum."""
