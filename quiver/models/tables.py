"""What was learnt about a table's bytes, kept by their sha256 so it is computed only once."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class TableAnalysis(Model):
    """One analysis (schema, statistics, quality, drift against a baseline…) of a table.

    Keyed by the source content and the arguments, so two datasets holding the same file,
    or the same file in two versions, share every result. A failure is kept too (``error``
    and ``error_line``): malformed bytes stay malformed.
    """

    id = fields.BigIntField(primary_key=True)
    sha256 = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=32)
    arguments = fields.CharField(max_length=64, default="")
    result: fields.JSONField[Any] = fields.JSONField(null=True)
    error = fields.TextField(null=True)
    error_line = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "quiver_table_analysis"
        unique_together = (("sha256", "kind", "arguments"),)
