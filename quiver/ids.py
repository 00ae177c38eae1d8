"""Opaque global IDs: base64 of ``Type:pk``, as Relay and GitHub do."""

from __future__ import annotations

import base64
import binascii

# Primary keys are 64-bit signed integers on every database; a number outside them names
# nothing (and the drivers raise on it rather than find nothing).
MAX_PK = 2**63 - 1


def encode_global_id(type_name: str, pk: int | str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_global_id(global_id: str, expected_type: str | None = None) -> int | None:
    """The numeric pk inside ``global_id``, or None when it is malformed or of another type."""
    try:
        raw = base64.b64decode(global_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    if not sep or (expected_type is not None and type_name != expected_type):
        return None
    return parse_pk(pk)


def parse_pk(text: str) -> int | None:
    """``text`` as a primary key (ASCII digits, 1..2^63-1), or None when it cannot be one."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_PK)):
        return None
    pk = int(text)
    return pk if 1 <= pk <= MAX_PK else None


def global_id_type(global_id: str) -> str | None:
    try:
        raw = base64.b64decode(global_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, _ = raw.partition(":")
    return type_name if sep else None
