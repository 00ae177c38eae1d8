"""Opaque global IDs: base64 of ``Type:pk``, as Relay and GitHub do."""

from __future__ import annotations

import base64
import binascii


def encode_global_id(type_name: str, pk: int | str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_global_id(global_id: str, expected_type: str | None = None) -> int | None:
    """The numeric pk inside ``global_id``, or None when it is malformed or of another type."""
    try:
        raw = base64.b64decode(global_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    if not sep or not pk.isdigit() or (expected_type is not None and type_name != expected_type):
        return None
    return int(pk)


def global_id_type(global_id: str) -> str | None:
    try:
        raw = base64.b64decode(global_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, _ = raw.partition(":")
    return type_name if sep else None
