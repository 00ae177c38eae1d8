"""The client half of the ``quiver`` command: login, datasets, push, pull, versions, stats."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import httpx
import typer

from quiver.client.client import Client
from quiver.client.errors import QuiverError
from quiver.client.settings import write_config
from quiver.client.terminal import progress_for

if TYPE_CHECKING:
    from rich.table import Table as RichTable

P = ParamSpec("P")
R = TypeVar("R")

EXIT_CODES = {
    "INVALID": 2,
    "NOT_FOUND": 3,
    "CONFLICT": 4,
    "UNAUTHENTICATED": 5,
    "FORBIDDEN": 5,
    "UNAVAILABLE": 6,
    "TOO_LARGE": 7,
}
EXIT_HELP = (
    "Exit codes: 0 done, 1 other error, 2 invalid input, 3 not found, 4 conflict (the dataset "
    "moved), 5 not signed in or not allowed, 6 server unreachable, 7 too large."
)

datasets_app = typer.Typer(help=f"List, create, show and delete datasets. {EXIT_HELP}")
cache_app = typer.Typer(
    help="Show or empty the local cache of pulled bytes (QUIVER_CACHE_DIR, else "
    "~/.cache/quiver). It has no size limit: a pull keeps every byte it downloads."
)

Url = Annotated[str | None, typer.Option(help="The server (QUIVER_URL, or what login saved).")]
Key = Annotated[str | None, typer.Option(help="API key (QUIVER_API_KEY, or what login saved).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Workers = Annotated[int, typer.Option(help="Files moved in parallel.", min=1, max=64)]


def fails_readably(command: Callable[P, R]) -> Callable[P, R]:
    """A refusal is one line on stderr with its code, and an exit code; never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except QuiverError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(EXIT_CODES.get(error.code, 1)) from None
        except httpx.HTTPError as error:
            typer.echo(f"error: UNAVAILABLE: {error}", err=True)
            raise typer.Exit(EXIT_CODES["UNAVAILABLE"]) from None
        except OSError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130) from None

    return run


def emit(value: Any, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def table(*columns: str) -> RichTable:
    from rich.table import Table as RichTable  # rich loads only for the commands that print

    return RichTable(*columns, box=None, header_style="bold")


def show(rich_table: RichTable) -> None:
    from rich.console import Console

    Console(soft_wrap=True).print(rich_table)


def show_fields(record: Any) -> None:
    """A result dataclass as a two-column table of its fields (empty for None)."""
    rows = table("field", "value")
    for key, value in dataclasses.asdict(record).items():
        rows.add_row(key, "" if value is None else str(value))
    show(rows)


def register(app: typer.Typer) -> None:
    """Add the client's commands to the ``quiver`` command."""
    app.info.epilog = f"Client commands: {EXIT_HELP}"
    app.command(epilog=EXIT_HELP)(login)
    app.add_typer(datasets_app, name="datasets")
    from quiver.client.cli_jobs import jobs_app
    from quiver.client.cli_labels import labels_app
    from quiver.client.cli_versions import stats, versions_app

    app.add_typer(versions_app, name="versions")
    app.command(epilog=EXIT_HELP)(push)
    app.command(epilog=EXIT_HELP)(pull)
    app.command(epilog=EXIT_HELP)(stats)

    app.add_typer(jobs_app, name="jobs")
    app.add_typer(labels_app, name="labels")
    app.add_typer(cache_app, name="cache")


@fails_readably
def login(
    url: Annotated[str, typer.Option(help="The server, e.g. http://127.0.0.1:8000.")],
    api_key: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="Your API key (qvr_…).")
    ],
) -> None:
    """Check a key against a server and save both for later commands."""
    with Client(url, api_key) as client:
        from quiver.client.operations import viewer_name

        name = client.execute(viewer_name())
    if name is None:
        raise QuiverError("the server does not know this API key", code="UNAUTHENTICATED")
    path = write_config(url, api_key)
    typer.echo(f"Signed in to {client.url} as {name} (saved in {path})")


@datasets_app.command("ls", epilog=EXIT_HELP)
@fails_readably
def datasets_ls(
    keyword: Annotated[str | None, typer.Option(help="Only names/descriptions with this.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only datasets with this tag.")] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """List the datasets you can read."""
    with Client(url, api_key) as client:
        found = list(client.datasets(keyword=keyword, tags=tag or None))
    if as_json:
        return emit(found, as_json=True)
    rows = table("name", "team", "files", "bytes", "latest", "type", "id")
    for d in found:
        latest = f"v{d.latest_version}" if d.latest_version else "-"
        rows.add_row(
            d.name, d.team or "", str(d.file_count), str(d.total_size), latest, d.type, d.id
        )
    show(rows)


@datasets_app.command("create", epilog=EXIT_HELP)
@fails_readably
def datasets_create(
    name: str,
    description: Annotated[str | None, typer.Option(help="What it holds.")] = None,
    type: Annotated[
        str, typer.Option(help="TEXT, IMAGE, AUDIO, VIDEO, TABULAR or OTHER.")
    ] = "OTHER",
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    public: Annotated[bool, typer.Option(help="Readable by anyone.")] = False,
    team: Annotated[str | None, typer.Option(help="A team of yours (default: personal).")] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Create a dataset."""
    with Client(url, api_key) as client:
        made = client.create_dataset(
            name,
            description=description,
            type=type.upper(),
            tags=tag,
            visibility="PUBLIC" if public else "PRIVATE",
            team=team,
        )
    if as_json:
        return emit(made, as_json=True)
    typer.echo(f"Created {made.name} ({made.id})")


@datasets_app.command("show", epilog=EXIT_HELP)
@fails_readably
def datasets_show(
    dataset: Annotated[str, typer.Argument(help="[team/]name or ID.")],
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Show a dataset."""
    with Client(url, api_key) as client:
        found = client.dataset(dataset)
    if as_json:
        return emit(found, as_json=True)
    show_fields(found)


@datasets_app.command("rm", epilog=EXIT_HELP)
@fails_readably
def datasets_rm(
    dataset: Annotated[str, typer.Argument(help="[team/]name or ID.")],
    hard: Annotated[bool, typer.Option(help="Delete for good (default: reinstatable).")] = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Delete a dataset (soft by default: `reinstateDataset` brings it back)."""
    with Client(url, api_key) as client:
        client.delete_dataset(dataset, hard=hard)
    typer.echo(f"Deleted {dataset}{' for good' if hard else ''}")


def few_collections() -> None:
    """Fewer, larger cyclic collections for the rest of this process (it ends with the
    command), and none at its exit. A push or pull of 10,000 files allocates millions of
    short-lived objects and keeps few cycles: at Python's default, a collection every 700
    allocations, the collector took ~10% of a pull's stream-reading thread (py-spy); the
    interpreter's collections at exit then cost 0.3-0.5 s more, 0.05 s with everything
    frozen first (nothing is left to free once the process ends)."""
    gc.set_threshold(100_000, 20, 20)
    atexit.register(gc.freeze)


@fails_readably
def push(
    directory: Annotated[Path, typer.Argument(help="The local folder.")],
    dataset: Annotated[
        str, typer.Argument(help="[team/]name[@vN]: with @vN, refused unless vN is the latest.")
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="The version's note.")
    ] = None,
    include: Annotated[list[str] | None, typer.Option(help="Only paths matching (glob).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip paths matching (glob).")] = None,
    delete: Annotated[bool, typer.Option(help="Remove remote files missing locally.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would change; send nothing.")] = False,
    version: Annotated[bool, typer.Option(help="Commit the push as a new version.")] = True,
    check_remote: Annotated[
        bool,
        typer.Option(help="List the dataset even if it is as the last push from here left it."),
    ] = False,
    workers: Workers = 4,
    quiet: Quiet = False,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Upload a folder's new and changed files and commit them as one version. Killed, run
    it again: it resumes (sent bytes are not sent again)."""
    few_collections()
    progress = progress_for(quiet or as_json)
    try:
        with Client(url, api_key) as client:
            report = client.push(
                directory,
                dataset,
                message=message,
                workers=workers,
                include=include,
                exclude=exclude,
                delete=delete,
                dry_run=dry_run,
                create_version=version,
                check_remote=check_remote,
                progress=progress,
            )
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        return emit(report, as_json=True)
    if quiet:
        return
    if dry_run:
        for path in report.added:
            typer.echo(f"add {path}")
        for path in report.changed:
            typer.echo(f"change {path}")
        for path in report.deleted:
            typer.echo(f"delete {path}")
    made = f", committed as v{report.version.number}" if report.version else ""
    typer.echo(
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.deleted)} "
        f"deleted, {report.unchanged} unchanged; sent {report.uploaded_files} files "
        f"({report.uploaded_bytes} bytes){made}{' (dry run)' if dry_run else ''}"
    )


@fails_readably
def pull(
    dataset: Annotated[str, typer.Argument(help="[team/]name[@vN] (default: the working set).")],
    directory: Annotated[Path, typer.Argument(help="The local folder.")] = Path("."),
    prefix: Annotated[str | None, typer.Option(help="Only paths starting with this.")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Only samples with this label (repeatable).")
    ] = None,
    label_match: Annotated[
        str, typer.Option(help="ANY, ALL or NONE of the --label labels.")
    ] = "ANY",
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only samples in this status (repeatable): UNLABELED, LABELED, …"),
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option(help="Only samples whose metadata has KEY=VALUE (repeatable)."),
    ] = None,
    annotations: Annotated[
        str | None,
        typer.Option(help="Also write the pulled samples' annotations: coco, yolo, jsonl, …"),
    ] = None,
    workers: Workers = 4,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Neither read nor fill the local cache (a one-shot pull)."),
    ] = False,
    quiet: Quiet = False,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Download a version into a folder; files already there, or in the local cache, are
    not downloaded again; every file's sha256 is checked. --label/--status/--metadata pull
    only the files of matching samples; --annotations writes their annotations beside."""
    few_collections()
    progress = progress_for(quiet or as_json)
    try:
        with Client(url, api_key) as client:
            report = client.pull(
                dataset,
                directory,
                prefix=prefix,
                labels=label,
                label_match=label_match,
                status=status,
                metadata=parse_metadata(metadata),
                annotations=annotations,
                workers=workers,
                progress=progress,
                cache=False if no_cache else None,
            )
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        return emit(report, as_json=True)
    if not quiet:
        typer.echo(
            f"{report.files} files: {report.unchanged} unchanged, {report.from_cache} from the "
            f"cache, {report.downloaded_files} downloaded ({report.downloaded_bytes} bytes)"
        )
        for path in report.annotation_files:
            typer.echo(f"annotations: {path}")


def parse_metadata(pairs: list[str] | None) -> dict[str, Any] | None:
    return parse_pairs(pairs, "--metadata") if pairs else None


def parse_pairs(pairs: list[str], option: str) -> dict[str, Any]:
    """KEY=VALUE pairs; a VALUE that reads as JSON (a number, true, null) is that."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise QuiverError(f"{option} takes KEY=VALUE, not {pair!r}", code="INVALID")
        try:
            found[key] = json.loads(value)
        except ValueError:
            found[key] = value
    return found


@cache_app.command("info")
@fails_readably
def cache_info(as_json: AsJson = False) -> None:
    """Where the cache of pulled bytes is and how much it holds."""
    from quiver.client.blob_cache import cache_usage

    usage = cache_usage()
    emit(usage, as_json=as_json)
    if not as_json:
        typer.echo(f"{usage.path}: {usage.files} files, {usage.bytes} bytes")


@cache_app.command("clear")
@fails_readably
def cache_clear(as_json: AsJson = False, quiet: Quiet = False) -> None:
    """Delete the cached bytes; later pulls download again what they need (push's hashes stay)."""
    from quiver.client.blob_cache import clear_cache

    freed = clear_cache()
    emit(freed, as_json=as_json)
    if not (as_json or quiet):
        typer.echo(f"removed {freed.files} files, {freed.bytes} bytes from {freed.path}")
