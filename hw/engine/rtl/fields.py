"""Instruction fields as slices of the fetched 32-bit words, from the encoding's field tables.

The RTL never repeats a bit position: :func:`record_field` looks the field up in
``binaryvit.hw.engine.encoding.field_table`` (the table ``docs/engine.md`` prints), so a change
of the encoding changes the decoder with it.
"""
from __future__ import annotations

from amaranth.hdl import Value

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.encoding import field_table


def record_field(cls: type, words, path: str) -> Value:
    """Field ``path`` (e.g. ``"source.tensor.address"``) of a ``cls`` record held in
    ``words`` (32-bit values, the record's word 0 first); signed fields come back signed."""
    for name, word, lsb, bits, signed in field_table(cls):
        if name == path:
            value = words[word][lsb:lsb + bits]
            return value.as_signed() if signed else value
    raise ConfigError(f"{cls.__name__} has no field {path!r}")


__all__ = ["record_field"]
