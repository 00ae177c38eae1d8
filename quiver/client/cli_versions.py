"""``quiver versions ls|create|diff|restore`` and ``quiver stats``: versions and table
statistics from the command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from quiver.client.cli import EXIT_HELP, AsJson, Key, Url, emit, fails_readably, show, table
from quiver.client.client import Client
from quiver.client.references import parse_reference, parse_version

versions_app = typer.Typer(help=f"List, create, compare and restore versions. {EXIT_HELP}")


@versions_app.command("ls", epilog=EXIT_HELP)
@fails_readably
def versions_ls(
    dataset: Annotated[str, typer.Argument(help="[team/]name or ID.")],
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """List a dataset's versions, newest first."""
    with Client(url, api_key) as client:
        found = list(client.versions(dataset))
    if as_json:
        return emit(found, as_json=True)
    rows = table("version", "files", "bytes", "created", "by", "description")
    for v in found:
        created = v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else ""
        rows.add_row(
            v.name, str(v.file_count), str(v.total_size), created, v.created_by or "",
            v.description or "",
        )  # fmt: skip
    show(rows)


@versions_app.command("create", epilog=EXIT_HELP)
@fails_readably
def versions_create(
    dataset: Annotated[str, typer.Argument(help="[team/]name or ID.")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="A note.")] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Snapshot the working set as the next version."""
    with Client(url, api_key) as client:
        made = client.create_version(dataset, message)
    if as_json:
        return emit(made, as_json=True)
    typer.echo(f"Created {made.name} ({made.file_count} files)")


@versions_app.command("diff", epilog=EXIT_HELP)
@fails_readably
def versions_diff(
    dataset: Annotated[str, typer.Argument(help="[team/]name or ID.")],
    old: Annotated[str, typer.Argument(help="The older version (v1).")],
    new: Annotated[str, typer.Argument(help="The newer version (v2).")],
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """What changed between two versions."""
    with Client(url, api_key) as client:
        found = client.diff(dataset, parse_version(old), parse_version(new))
    if as_json:
        return emit(found, as_json=True)
    for sign, entries in (("+", found.added), ("-", found.removed), ("M", found.changed)):
        for entry in entries:
            typer.echo(f"{sign} {entry.path}")
    for entry in found.renamed:
        typer.echo(f"R {entry.old_path} -> {entry.path}")
    typer.echo(
        f"{found.added_count} added, {found.removed_count} removed, "
        f"{found.changed_count} changed, {found.renamed_count} renamed"
    )


@versions_app.command("restore", epilog=EXIT_HELP)
@fails_readably
def versions_restore(
    dataset: Annotated[str, typer.Argument(help="[team/]name or ID.")],
    version: Annotated[str, typer.Argument(help="The version to restore (v1).")],
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Make the working set equal to a version."""
    with Client(url, api_key) as client:
        restored = client.restore_version(dataset, parse_version(version))
    typer.echo(f"{restored.name}'s working set is {version} ({restored.file_count} files)")


@fails_readably
def stats(
    dataset: Annotated[str, typer.Argument(help="[team/]name[@vN] (default: latest version).")],
    path: Annotated[str | None, typer.Argument(help="The table's path.")] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Column statistics of a version's table."""
    parse_reference(dataset)
    with Client(url, api_key) as client:
        found = client.statistics(dataset, path)
    if as_json:
        return emit(found, as_json=True)
    rows = table("column", "dtype", "count", "missing", "unique", "min", "max", "mean", "std")

    def number(value: object) -> str:
        return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    for c in found.columns:
        rows.add_row(
            c.name, c.dtype, str(c.count), str(c.missing), str(c.unique), number(c.min),
            number(c.max), number(c.mean), number(c.std),
        )  # fmt: skip
    show(rows)
    typer.echo(f"{found.row_count} rows, {found.duplicate_rows} duplicate rows", file=sys.stdout)
