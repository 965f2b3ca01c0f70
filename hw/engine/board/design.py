"""What a bitstream of the engine fixes about its program: the design id and the host interface.

The engine's RTL runs any program compiled for its :class:`EngineConfig`; the program and
every constant live in the parameter payload. What the board top bakes in as constants is
the *plan*: where the program starts, where the pixels go, where the logits are, the memory
layout every instruction's addresses assume. :class:`EngineDesign` collects those constants,
and its ``design_id`` (``parameter_image.design_id`` of the plan's canonical JSON) is what the
bitstream carries and what every parameter image for it must carry in its header. A
retrained checkpoint of the same architecture gives the same plan (``docs/engine.md``,
"Memory"), so its parameter image loads into the same bitstream; any other plan is refused
by the loader (``DESIGN_MISMATCH``) and by ``binaryvit update-weights`` before that.

``OUT/rtl/engine.json`` stores an :class:`EngineDesign` (``save`` / ``load_engine_design``);
``OUT/params.bin`` the parameter image (``parameter_image_for``).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import ConfigError, DataError
from binaryvit.hw.engine.config import EngineConfig, MemoryBank
from binaryvit.hw.engine.isa import TensorKind
from binaryvit.hw.engine.parameter_image import ParameterImage, design_id
from binaryvit.hw.engine.program import Program

__all__ = ["EngineDesign", "engine_design", "parameter_image_for", "load_engine_design",
           "plan_description", "DESIGN_FILE", "PARAMETER_IMAGE_FILE"]

DESIGN_FILE = "engine.json"          # under OUT/rtl/
PARAMETER_IMAGE_FILE = "params.bin"  # under OUT/
DESIGN_FORMAT = 1


def plan_description(program: Program) -> dict:
    """The program's memory plan and interface, without anything a retrained checkpoint of
    the same architecture changes (constants, shifts, the cycle model's figures): the engine
    config, every segment, region and tensor placement, the input and output tensors."""
    plan = program.describe()
    del plan["cycles"], plan["cycles_per_image"]
    description = {"format": DESIGN_FORMAT, "config": dataclasses.asdict(program.config),
                   "plan": plan}
    return json.loads(_canonical(description))    # as it reads back from engine.json


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class EngineDesign:
    """The constants an engine bitstream is built with.

    Attributes
    ----------
    config : the engine's configuration (banks, widths).
    design_id : 32-bit id of the plan (the parameter image header must carry it).
    program_address : word address of the first instruction (the core's ``pc_start``).
    input_address, pixels : the input tensor ``STREAM [H·W, C]``: ``pixels`` words from
        ``input_address``, one signed 16-bit word per pixel, pixel ``(i, j)``'s channels
        together, raster order.
    pixel_width, pixel_signed : the raw pixel element (from the integer model's input
        range); one UART byte per pixel.
    output_address, classes, logit_words : the logits, ``classes`` values of
        ``logit_words`` words each (least significant first) from ``output_address``.
    image_shape : ``[C, H, W]`` of one image.
    plan : :func:`plan_description` (what ``design_id`` hashes).
    """

    config: EngineConfig
    design_id: int
    program_address: int
    input_address: int
    pixels: int
    pixel_width: int
    pixel_signed: bool
    output_address: int
    classes: int
    logit_words: int
    image_shape: tuple[int, int, int]
    plan: dict

    @property
    def logit_bits(self) -> int:
        return 16 * self.logit_words

    def to_json(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["config"] = dataclasses.asdict(self.config)
        fields["image_shape"] = list(self.image_shape)
        return {"arch": "engine", **fields}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the design as JSON, atomically."""
        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path


def _pixel_format(input_range: tuple[int, int]) -> tuple[int, bool]:
    lo, hi = (int(v) for v in input_range)
    if lo >= 0:
        return max(1, hi.bit_length()), False
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1, True   # -2^(w-1) <= lo


def engine_design(program: Program, input_range: tuple[int, int],
                  image_shape: tuple[int, int, int]) -> EngineDesign:
    """The board constants of ``program`` for images of ``image_shape`` whose raw pixels lie
    in ``input_range`` (``IntModel.input_range``); ``ConfigError`` naming the problem when
    they cannot travel over the UART protocol (pixels wider than 8 bits, logits wider than
    32, more than 255 classes)."""
    width, signed = _pixel_format(input_range)
    if width > 8:
        raise ConfigError(f"pixels in {list(input_range)} need {width} bits; the UART "
                          f"protocol carries one byte per pixel")
    ref, out, wide = program.input, program.output, program.config.wide_words
    if ref.kind != TensorKind.STREAM or ref.rows * ref.cols != image_shape[0] * image_shape[1] \
            * image_shape[2]:
        raise ConfigError(f"program input {ref.kind.name} [{ref.rows}, {ref.cols}] is not a "
                          f"STREAM of the {list(image_shape)} image's pixels")
    logit_words = {TensorKind.STREAM: 1, TensorKind.WIDE: wide}.get(out.kind)
    if logit_words is None or 16 * logit_words > 32 or out.rows != 1:
        raise ConfigError(f"program output {out.kind.name} [{out.rows}, {out.cols}]: the board "
                          f"sends one row of logits of at most 32 bits")
    if not 1 <= out.cols <= 255:
        raise ConfigError(f"{out.cols} classes: the UART protocol carries 1 to 255")
    plan = plan_description(program)
    return EngineDesign(config=program.config, design_id=design_id(_canonical(plan)),
                        program_address=program.program_address, input_address=ref.address,
                        pixels=ref.rows * ref.cols, pixel_width=width, pixel_signed=signed,
                        output_address=out.address, classes=out.cols, logit_words=logit_words,
                        image_shape=tuple(int(v) for v in image_shape), plan=plan)


def parameter_image_for(program: Program, design: EngineDesign) -> ParameterImage:
    """The parameter image that loads ``program`` into a bitstream built for ``design``;
    ``DataError`` naming the first difference when the program's plan is not the design's
    (e.g. a checkpoint of another architecture)."""
    plan = plan_description(program)
    if plan != design.plan:
        raise DataError("the program's memory plan differs from the bitstream's design "
                        f"({_first_difference(plan, design.plan)}); it needs a new build "
                        "(binaryvit generate + build)")
    return ParameterImage(design.design_id, [(int(a), w) for a, w in program.segment_words()])


def _first_difference(new, old, path: str = "plan") -> str:
    if isinstance(new, dict) and isinstance(old, dict):
        for key in sorted(set(new) | set(old)):
            if key not in new or key not in old:
                return f"{path}.{key} only in the {'new' if key in new else 'built'} plan"
            if new[key] != old[key]:
                return _first_difference(new[key], old[key], f"{path}.{key}")
    if isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            return f"{path}: {len(new)} entries, the built design has {len(old)}"
        for i, (a, b) in enumerate(zip(new, old)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path}: {json.dumps(new)[:80]} instead of {json.dumps(old)[:80]}"


def load_engine_design(path: str | os.PathLike) -> EngineDesign:
    """Read ``OUT/rtl/engine.json`` (``DataError`` in one line when missing or damaged)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        config = dict(raw["config"])
        config["banks"] = tuple(MemoryBank(**b) for b in config["banks"])
        fields = {f.name: raw[f.name] for f in dataclasses.fields(EngineDesign)}
        fields.update(config=EngineConfig(**config), image_shape=tuple(raw["image_shape"]))
        if raw.get("arch") != "engine":
            raise KeyError("arch")
        return EngineDesign(**fields)
    except FileNotFoundError:
        raise DataError(f"{path} not found: generate the engine first "
                        f"(binaryvit generate OUT --arch engine)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not an engine design ({type(exc).__name__}: {exc})") from None
