"""ROM image files: .hex, .mem, .mif, .coe and .bin writers and readers, exact both ways.

Every format stores words of ``width`` bits; the bits of a word above ``width`` (when
``width`` is not a multiple of 4 — or 8 for .bin) are pad bits, written 0 and refused by
the readers when set. Files appear atomically (``binaryvit.atomic``).

=======  ====================================================================================
format   layout
=======  ====================================================================================
.hex     one word per line, ``ceil(width/4)`` lowercase hex digits, most significant digit
         first; nothing else (Verilog ``$readmemh``). Width and depth are not recorded:
         the reader needs ``width`` and checks ``depth`` when given (else: line count).
.mem     ``// binaryvit rom width=<W> depth=<D>`` comment, an ``@0`` address line, then the
         .hex lines (also ``$readmemh``-compatible); the reader takes width/depth from the
         header.
.mif     Intel/Altera Memory Initialization File: ``WIDTH=``, ``DEPTH=``,
         ``ADDRESS_RADIX=HEX``, ``DATA_RADIX=HEX``, ``CONTENT BEGIN``, one ``addr : word;``
         per line, ``END;``. The reader also accepts ``[a..b] : word;`` ranges and ``--``
         comments; every address must be given exactly once.
.coe     Xilinx coefficient file: a ``; binaryvit rom width=<W> depth=<D>`` comment,
         ``memory_initialization_radix=16;``, ``memory_initialization_vector=`` and the
         words separated by commas, ending in ``;``. The reader takes the width from the
         comment, or from ``width=`` for a file without it.
.bin     raw words, ``ceil(width/8)`` bytes each, little-endian (byte 0 holds bits 0–7),
         word 0 first, no header; the reader needs ``width`` (depth = size / bytes per word).
=======  ====================================================================================

The .hex and .mem readers require exactly ``ceil(width/4)`` digits per word (a cut line is
an error); the .mif and .coe readers accept fewer digits, as other tools write them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from binaryvit.atomic import write_bytes_atomic, write_text_atomic
from binaryvit.errors import CheckpointError, ConfigError
from binaryvit.golden.intref.validation import is_integer
from binaryvit.quantize.rom_image import RomImage

ROM_FORMATS = ("hex", "mem", "mif", "coe", "bin")

_HEADER = re.compile(r"^\s*(?://|;)\s*binaryvit rom width=(\d+) depth=(\d+)\s*$")
_HEX_WORD = re.compile(r"^[0-9a-fA-F]+$")


class RomFormatError(CheckpointError):
    """A ROM image file that is missing, corrupt, truncated or inconsistent with its width/depth."""


def _format_of(path: Path, fmt: str | None) -> str:
    name = (fmt or path.suffix.lstrip(".")).lower()
    if name not in ROM_FORMATS:
        raise ConfigError(f"fmt: unknown ROM format {name!r} for {path}; expected one of {', '.join(ROM_FORMATS)}")
    return name


def _digits(width: int) -> int:
    return -(-width // 4)


def _hex_lines(image: RomImage) -> list[str]:
    digits = _digits(image.width)
    return [f"{word:0{digits}x}" for word in image.words]


def rom_image_text(image: RomImage, fmt: str) -> str:
    """The text of a .hex, .mem, .mif or .coe file for ``image``."""
    fmt = _format_of(Path(f"x.{fmt}"), fmt)
    header = f"binaryvit rom width={image.width} depth={image.depth}"
    if fmt == "hex":
        return "\n".join(_hex_lines(image)) + "\n"
    if fmt == "mem":
        return f"// {header}\n@0\n" + "\n".join(_hex_lines(image)) + "\n"
    if fmt == "mif":
        addr_digits = max(1, _digits((image.depth - 1).bit_length()))
        body = "".join(f"\t{a:0{addr_digits}x} : {w};\n" for a, w in enumerate(_hex_lines(image)))
        return (f"-- {header}\nWIDTH={image.width};\nDEPTH={image.depth};\n\n"
                f"ADDRESS_RADIX=HEX;\nDATA_RADIX=HEX;\n\nCONTENT BEGIN\n{body}END;\n")
    if fmt == "coe":
        return (f"; {header}\nmemory_initialization_radix=16;\nmemory_initialization_vector=\n"
                + ",\n".join(_hex_lines(image)) + ";\n")
    raise ConfigError("fmt: .bin is a binary format; use rom_image_bytes")


def rom_image_bytes(image: RomImage) -> bytes:
    """The bytes of a .bin file: ``ceil(width/8)`` little-endian bytes per word."""
    nbytes = -(-image.width // 8)
    return b"".join(word.to_bytes(nbytes, "little") for word in image.words)


def write_rom_image(image: RomImage, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write ``image`` atomically; the format comes from ``fmt`` or the path's suffix."""
    path = Path(path)
    name = _format_of(path, fmt)
    if name == "bin":
        write_bytes_atomic(path, rom_image_bytes(image))
    else:
        write_text_atomic(path, rom_image_text(image, name))
    return path


def write_rom_images(image: RomImage, folder: str | os.PathLike, stem: str,
                     formats: tuple[str, ...] = ROM_FORMATS) -> list[Path]:
    """Write ``image`` as ``folder/stem.<fmt>`` for every format in ``formats`` (each atomically)."""
    return [write_rom_image(image, Path(folder) / f"{stem}.{fmt}", fmt) for fmt in formats]


def _word(text: str, width: int, where: str, exact_digits: bool) -> int:
    if not _HEX_WORD.match(text):
        raise RomFormatError(f"{where}: {text!r} is not a hex word")
    if exact_digits and len(text) != _digits(width):
        raise RomFormatError(f"{where}: {text!r} has {len(text)} hex digits, a {width}-bit word has {_digits(width)}")
    value = int(text, 16)
    if value >> width:
        raise RomFormatError(f"{where}: word {text} sets bits above the {width}-bit width (pad bits must be 0)")
    return value


def _check_shape(path: Path, width: int | None, depth: int | None, found_depth: int,
                 file_width: int | None = None, file_depth: int | None = None) -> int:
    if file_width is not None and width is not None and width != file_width:
        raise RomFormatError(f"{path}: file says width={file_width}, expected width={width}")
    if file_depth is not None and file_depth != found_depth:
        raise RomFormatError(f"{path}: file says depth={file_depth} but holds {found_depth} words (truncated?)")
    if depth is not None and depth != found_depth:
        raise RomFormatError(f"{path}: holds {found_depth} words, expected depth={depth}")
    if found_depth < 1:
        raise RomFormatError(f"{path}: holds no words")
    resolved = file_width if file_width is not None else width
    if resolved is None:
        raise ConfigError(f"width: {path.suffix} files do not record the word width; pass width=")
    return resolved


def _read_header(lines: list[str]) -> tuple[int | None, int | None]:
    for line in lines[:3]:
        m = _HEADER.match(line)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None, None


def _read_hex(path: Path, text: str, width: int | None, depth: int | None, with_header: bool) -> RomImage:
    lines = text.splitlines()
    file_width = file_depth = None
    if with_header:
        file_width, file_depth = _read_header(lines)
        if file_width is None:
            raise RomFormatError(f"{path}: missing the '// binaryvit rom width=… depth=…' header line")
        body = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("//")]
        if not body or body[0] != "@0":
            raise RomFormatError(f"{path}: expected an '@0' address line before the words")
        body = body[1:]
    else:
        body = [ln.strip() for ln in lines if ln.strip()]
    w = _check_shape(path, width, depth, len(body), file_width, file_depth)
    words = [_word(t, w, f"{path} word {i}", exact_digits=True) for i, t in enumerate(body)]
    return RomImage(width=w, depth=len(words), words=words)


_MIF_CONTENT = re.compile(r"CONTENT\s+BEGIN(.*?)END\s*;", re.IGNORECASE | re.DOTALL)
_MIF_ENTRY = re.compile(r"^(?:\[([0-9a-fA-F]+)\.\.([0-9a-fA-F]+)\]|([0-9a-fA-F]+))\s*:\s*([0-9a-fA-F]+)$")


def _mif_setting(path: Path, text: str, key: str) -> str:
    m = re.search(rf"\b{key}\s*=\s*([^;]+);", text, re.IGNORECASE)
    if not m:
        raise RomFormatError(f"{path}: missing {key}=…;")
    return m.group(1).strip()


def _mif_int(path: Path, text: str, key: str) -> int:
    value = _mif_setting(path, text, key)
    if not value.isdigit() or int(value) < 1:
        raise RomFormatError(f"{path}: {key}={value!r} is not a positive integer")
    return int(value)


def _read_mif(path: Path, text: str, width: int | None, depth: int | None) -> RomImage:
    text = re.sub(r"--[^\n]*", "", text)
    file_width, file_depth = _mif_int(path, text, "WIDTH"), _mif_int(path, text, "DEPTH")
    for key in ("ADDRESS_RADIX", "DATA_RADIX"):
        if _mif_setting(path, text, key).upper() != "HEX":
            raise RomFormatError(f"{path}: only {key}=HEX is supported")
    content = _MIF_CONTENT.search(text)
    if not content:
        raise RomFormatError(f"{path}: missing 'CONTENT BEGIN … END;' (truncated?)")
    words: list[int | None] = [None] * file_depth
    entries = [e.strip() for e in content.group(1).split(";")]
    if entries[-1]:
        raise RomFormatError(f"{path}: entry {entries[-1]!r} lacks its ';'")
    for entry in entries[:-1]:
        m = _MIF_ENTRY.match(entry)
        if not m:
            raise RomFormatError(f"{path}: cannot parse content entry {entry!r}")
        first, last = (int(m.group(1), 16), int(m.group(2), 16)) if m.group(1) else (int(m.group(3), 16),) * 2
        value = _word(m.group(4), file_width, f"{path} address {first:x}", exact_digits=False)
        for address in range(first, last + 1):
            if address >= file_depth:
                raise RomFormatError(f"{path}: address {address:x} is beyond DEPTH={file_depth}")
            if words[address] is not None:
                raise RomFormatError(f"{path}: address {address:x} is given twice")
            words[address] = value
    missing = [a for a, w in enumerate(words) if w is None]
    if missing:
        raise RomFormatError(f"{path}: {len(missing)} addresses have no word (first: {missing[0]:x}; truncated?)")
    _check_shape(path, width, depth, file_depth, file_width)
    return RomImage(width=file_width, depth=file_depth, words=words)


def _read_coe(path: Path, text: str, width: int | None, depth: int | None) -> RomImage:
    lines = text.splitlines()
    file_width, file_depth = _read_header(lines)
    body = " ".join(ln for ln in lines if not ln.strip().startswith(";"))
    radix = re.search(r"memory_initialization_radix\s*=\s*(\d+)\s*;", body, re.IGNORECASE)
    if not radix or radix.group(1) != "16":
        raise RomFormatError(f"{path}: expected 'memory_initialization_radix=16;'")
    vector = re.search(r"memory_initialization_vector\s*=(.*?);", body, re.IGNORECASE | re.DOTALL)
    if not vector:
        raise RomFormatError(f"{path}: missing 'memory_initialization_vector= … ;' (truncated?)")
    items = [t.strip() for t in re.split(r"[,\s]+", vector.group(1).strip())]
    items = [t for t in items if t]
    w = _check_shape(path, width, depth, len(items), file_width, file_depth)
    words = [_word(t, w, f"{path} word {i}", exact_digits=False) for i, t in enumerate(items)]
    return RomImage(width=w, depth=len(words), words=words)


def _read_bin(path: Path, data: bytes, width: int | None, depth: int | None) -> RomImage:
    if width is None:
        raise ConfigError("width: .bin files do not record the word width; pass width=")
    nbytes = -(-width // 8)
    if len(data) % nbytes:
        raise RomFormatError(f"{path}: {len(data)} bytes is not a whole number of {nbytes}-byte words (truncated?)")
    words = [int.from_bytes(data[i:i + nbytes], "little") for i in range(0, len(data), nbytes)]
    _check_shape(path, width, depth, len(words))
    for i, word in enumerate(words):
        if word >> width:
            raise RomFormatError(f"{path} word {i}: sets bits above the {width}-bit width (pad bits must be 0)")
    return RomImage(width=width, depth=len(words), words=words)


def read_rom_image(path: str | os.PathLike, width: int | None = None, depth: int | None = None,
                   fmt: str | None = None) -> RomImage:
    """Read a ROM image written by :func:`write_rom_image` (or a compatible tool).

    ``width`` is required for .hex, .bin and header-less .coe files, and checked against the
    file elsewhere; ``depth``, when given, is checked (pass it for .hex/.bin to detect a file
    cut at a word boundary). The returned image has no folding (``pe`` etc. are ``None``).
    Raises ``RomFormatError`` (a ``CheckpointError``) for a missing, corrupt or truncated file.
    """
    path = Path(path)
    name = _format_of(path, fmt)
    for label, value in (("width", width), ("depth", depth)):
        if value is not None and (not is_integer(value) or value < 1):
            raise ConfigError(f"{label}: expected a positive integer, got {value!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RomFormatError(f"cannot read ROM image {path}: {exc.strerror}") from None
    if name == "bin":
        return _read_bin(path, data, width, depth)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise RomFormatError(f"{path}: not an ASCII text file") from None
    if name in ("hex", "mem"):
        return _read_hex(path, text, width, depth, with_header=name == "mem")
    if name == "mif":
        return _read_mif(path, text, width, depth)
    return _read_coe(path, text, width, depth)
