"""Paths stored before NFC normalisation was added are normalised to NFC (composed and
decomposed ``é`` are one path since then, and a decomposed old path was no longer found).

Working-set files, version files, version samples and tus uploads are rewritten. When two
paths of one dataset (or one version) become the same, the one already spelled in NFC keeps
the name (it is the one callers find today); otherwise the lowest id does; each other one
is renamed ``name_1.ext`` (the first free number), as ``mergeDatasets(RENAME)`` names
files. Every rename is kept in ``quiver_nfc_rename`` and logged as a warning.
Only paths with a non-ASCII character can change, so only those are read.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

LOG = logging.getLogger("quiver.migrations")

_CREATE_RENAMES = """
CREATE TABLE IF NOT EXISTS quiver_nfc_rename (
    id {serial} PRIMARY KEY,
    table_name VARCHAR(64) NOT NULL,
    scope_id BIGINT NOT NULL,
    row_id BIGINT NOT NULL,
    old_path VARCHAR(1024) NOT NULL,
    new_path VARCHAR(1024) NOT NULL,
    renamed_at TIMESTAMP NOT NULL
)
"""
# (table, the column a path is unique within, whether paths are unique there)
_UNIQUE_TABLES = (("quiver_dataset_file", "dataset_id"), ("quiver_version_entry", "version_id"))


def _nfc(path: str) -> str:
    return unicodedata.normalize("NFC", path)


def renamed_path(path: str, n: int) -> str:
    """``a/cat.jpg`` -> ``a/cat_1.jpg``; a leading dot is part of the name (``.env_1``)."""
    folder, slash, name = path.rpartition("/")
    stem, dot, extension = name[1:].rpartition(".")
    name = f"{name[0]}{stem}_{n}.{extension}" if dot else f"{name}_{n}"
    return f"{folder}{slash}{name}"


class _Sql:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.postgres = client.capabilities.dialect == "postgres"

    def text(self, sql: str) -> str:
        if not self.postgres:
            return sql
        parts = sql.split("?")
        return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]

    async def rows(self, sql: str, *values: Any) -> list[Any]:
        _, rows = await self.client.execute_query(self.text(sql), list(values))
        return list(rows)

    async def run(self, sql: str, *values: Any) -> None:
        await self.client.execute_query(self.text(sql), list(values))

    def non_ascii(self, column: str) -> str:
        if self.postgres:
            return f"octet_length({column}) <> char_length({column})"
        return f"length(CAST({column} AS BLOB)) <> length({column})"


async def normalise_paths(apps: Any, schema_editor: Any) -> None:
    sql = _Sql(schema_editor.client)
    serial = "BIGSERIAL" if sql.postgres else "INTEGER"
    await sql.run(_CREATE_RENAMES.format(serial=serial))
    now = datetime.now(UTC).replace(tzinfo=None)
    for table, scope in _UNIQUE_TABLES:
        moved = await _normalise_unique(sql, table, scope, now)
        if table == "quiver_version_entry":
            await _follow_version_samples(sql, moved)
    await _normalise_free(sql, "quiver_version_sample")
    await _normalise_free(sql, "quiver_upload")


async def _normalise_unique(
    sql: _Sql, table: str, scope: str, now: datetime
) -> dict[tuple[int, str], str]:
    """NFC every path of ``table``, renaming where two meet; (scope, old path) -> new path."""
    found = await sql.rows(
        f"SELECT id, {scope}, path FROM {table} WHERE {sql.non_ascii('path')} ORDER BY id"
    )
    changing: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in found:
        row_id, scope_id, path = row[0], row[1], row[2]
        if _nfc(path) != path:
            changing[scope_id].append((row_id, path))
    moved: dict[tuple[int, str], str] = {}
    for scope_id, rows in changing.items():
        leaving = {path for _, path in rows}
        for row_id, path in rows:
            target = _nfc(path)
            n = 0
            candidate = target
            while await _taken(sql, table, scope, scope_id, candidate, leaving):
                n += 1
                candidate = renamed_path(target, n)
            await sql.run(f"UPDATE {table} SET path = ? WHERE id = ?", candidate, row_id)
            leaving.discard(path)
            moved[(scope_id, path)] = candidate
            if candidate != target:
                await sql.run(
                    "INSERT INTO quiver_nfc_rename "
                    "(table_name, scope_id, row_id, old_path, new_path, renamed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    table,
                    scope_id,
                    row_id,
                    path,
                    candidate,
                    now,
                )
                LOG.warning(
                    "%s %s=%s: %r became %r, since %r was taken after NFC normalisation",
                    table,
                    scope,
                    scope_id,
                    path,
                    candidate,
                    target,
                )
    return moved


async def _taken(
    sql: _Sql, table: str, scope: str, scope_id: int, path: str, leaving: set[str]
) -> bool:
    """Whether ``path`` is held in the scope by a row that keeps it."""
    if path in leaving:  # a not-yet-normalised spelling: it moves away
        return False
    rows = await sql.rows(f"SELECT 1 FROM {table} WHERE {scope} = ? AND path = ?", scope_id, path)
    return bool(rows)


async def _follow_version_samples(sql: _Sql, moved: dict[tuple[int, str], str]) -> None:
    """A version's samples name their file by path: they follow its new path."""
    for (version_id, old), new in moved.items():
        await sql.run(
            "UPDATE quiver_version_sample SET path = ? WHERE version_id = ? AND path = ?",
            new,
            version_id,
            old,
        )


async def _normalise_free(sql: _Sql, table: str) -> None:
    """NFC the paths of a table where paths need not be unique."""
    found = await sql.rows(f"SELECT id, path FROM {table} WHERE {sql.non_ascii('path')}")
    for row_id, path in ((row[0], row[1]) for row in found):
        if _nfc(path) != path:
            await sql.run(f"UPDATE {table} SET path = ? WHERE id = ?", _nfc(path), row_id)


class Migration(migrations.Migration):
    dependencies = [("models", "0011_job_events")]

    initial = False

    operations = [
        ops.RunPython(normalise_paths, ops.RunPython.noop),
    ]
