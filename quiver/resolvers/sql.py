"""Set-based SQL the ORM cannot express (``INSERT … SELECT``, window functions), for both
engines: statements are written with ``?`` placeholders and ``{name}`` dialect fragments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

# Fragments that differ between SQLite and PostgreSQL, filled into ``{name}`` slots.
_FRAGMENTS = {
    "sqlite": {
        # A parameter holding a JSON array of strings, as rows of ``value``.
        "json_strings": "(SELECT value FROM json_each(?))",
        "json_ints": "(SELECT value FROM json_each(?))",
        "timestamp": "?",
        # The tags of working-set file ``f`` as a JSON array, in their order.
        "file_tags_json": (
            "(SELECT json_group_array(tag) FROM (SELECT t.tag FROM quiver_file_tag t "
            "WHERE t.file_id = f.id ORDER BY t.position))"
        ),
        # Rows (tag, position) of the JSON array ``e.tags``.
        "entry_tags": "JOIN json_each(e.tags) AS j",
        "entry_tag": "j.value",
        "entry_tag_position": "j.key",
        "lock": "",
        "json": "?",
        "skip_locked": "",
    },
    "postgres": {
        "json_strings": "(SELECT jsonb_array_elements_text(CAST(? AS JSONB)))",
        "json_ints": "(SELECT CAST(jsonb_array_elements_text(CAST(? AS JSONB)) AS BIGINT))",
        "timestamp": "CAST(? AS TIMESTAMPTZ)",
        "file_tags_json": (
            "COALESCE((SELECT jsonb_agg(t.tag ORDER BY t.position) FROM quiver_file_tag t "
            "WHERE t.file_id = f.id), '[]'::jsonb)"
        ),
        "entry_tags": (
            "CROSS JOIN LATERAL jsonb_array_elements_text(e.tags) WITH ORDINALITY AS j(tag, ord)"
        ),
        "entry_tag": "j.tag",
        "entry_tag_position": "j.ord - 1",
        "lock": "FOR UPDATE",
        "json": "CAST(? AS JSONB)",
        "skip_locked": "FOR UPDATE SKIP LOCKED",
    },
}


def connection() -> BaseDBAsyncClient:
    """The current connection: the transaction's inside ``in_transaction()``."""
    client: BaseDBAsyncClient = connections.get("default")
    return client


def dialect() -> str:
    return "postgres" if connection().capabilities.dialect == "postgres" else "sqlite"


def render(statement: str) -> str:
    """Fill the dialect fragments and turn ``?`` into ``$n`` for asyncpg."""
    name = dialect()
    sql = statement.format(**_FRAGMENTS[name])
    if name == "postgres":
        parts = sql.split("?")
        sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))
    return sql


async def execute(statement: str, *params: Any) -> None:
    await connection().execute_query(render(statement), list(params))


async def fetch(statement: str, *params: Any) -> list[dict[str, Any]]:
    return await connection().execute_query_dict(render(statement), list(params))


async def fetch_rows(statement: str, *params: Any) -> Sequence[Any]:
    """The rows as the driver gives them (``sqlite3.Row``, asyncpg's ``Record``: indexable
    and unpackable, whatever Tortoise's annotation says): for hot loops over many rows,
    where making a dict of each costs more than the query."""
    _, rows = await connection().execute_query(render(statement), list(params))
    return rows


async def lock_dataset(dataset_pk: int, *, bulk: bool = False) -> None:
    """Take the dataset row's lock for this transaction: every writer of a working set does,
    first, so snapshots and set-based rewrites never interleave with uploads.

    SQLite has no row locks; its writers are already serialized by the database lock.
    ``bulk`` tunes the transaction for set-based rewrites of many rows.
    """
    await execute("SELECT id FROM quiver_dataset WHERE id = ? {lock}", dataset_pk)
    if bulk and dialect() == "postgres":
        # Compiling a 100k-row INSERT … SELECT costs PostgreSQL's JIT more than it saves:
        # measured 3.6 s with it, 2.8 s without. Only this transaction is affected.
        await execute("SET LOCAL jit = off")


async def recount_dataset(dataset_pk: int, now: datetime) -> None:
    """Set the dataset's file count and size from its rows (after a set-based rewrite)."""
    await execute(
        "UPDATE quiver_dataset SET updated_at = {timestamp}, "
        "file_count = (SELECT COUNT(*) FROM quiver_dataset_file WHERE dataset_id = ?), "
        "total_size = (SELECT COALESCE(SUM(size), 0) FROM quiver_dataset_file "
        "WHERE dataset_id = ?) WHERE id = ?",
        now,
        dataset_pk,
        dataset_pk,
        dataset_pk,
    )
