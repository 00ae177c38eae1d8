"""``quiver labels ls|create``: a dataset's labels from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from quiver.client.cli import EXIT_HELP, AsJson, Key, Url, emit, fails_readably, show, table
from quiver.client.client import Client

labels_app = typer.Typer(help=f"List and create a dataset's labels. {EXIT_HELP}")
Dataset = Annotated[str, typer.Argument(help="[team/]name[@vN] or ID.")]


@labels_app.command("ls", epilog=EXIT_HELP)
@fails_readably
def labels_ls(
    dataset: Dataset, as_json: AsJson = False, url: Url = None, api_key: Key = None
) -> None:
    """List a dataset's (or a version's) labels, by name."""
    with Client(url, api_key) as client:
        found = client.labels(dataset)
    if as_json:
        return emit(found, as_json=True)
    rows = table("name", "kind", "color", "parent", "id")
    for label in found:
        rows.add_row(label.name, label.kind, label.color or "", label.parent or "", label.id)
    show(rows)


@labels_app.command("create", epilog=EXIT_HELP)
@fails_readably
def labels_create(
    dataset: Dataset,
    names: Annotated[list[str], typer.Argument(help="The new labels' names.")],
    kind: Annotated[
        str,
        typer.Option(help="CLASSIFICATION, BOUNDING_BOX, POLYGON, KEYPOINTS, … (for all)."),
    ] = "CLASSIFICATION",
    color: Annotated[str | None, typer.Option(help="#rrggbb (for all).")] = None,
    parent: Annotated[str | None, typer.Option(help="A label they are kinds of.")] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Create labels in a dataset, all or none."""
    given: list[str | dict[str, object]] = [
        {"name": name, "kind": kind.upper(), "color": color, "parent": parent} for name in names
    ]
    with Client(url, api_key) as client:
        made = client.create_labels(dataset, given)
    if as_json:
        return emit(made, as_json=True)
    typer.echo(f"Created {len(made)} labels: {', '.join(label.name for label in made)}")
