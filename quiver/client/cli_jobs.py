"""``quiver jobs start|ls|show|follow|cancel``: background jobs from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from quiver.client.cli import (
    EXIT_HELP,
    AsJson,
    Key,
    Url,
    emit,
    fails_readably,
    parse_pairs,
    show,
    show_fields,
    table,
)
from quiver.client.client import Client
from quiver.client.errors import QuiverError
from quiver.client.jobs import Job
from quiver.client.references import parse_reference

# Past the refusal codes: how a followed job ended.
JOB_EXIT_CODES = {"FAILED": 8, "CANCELLED": 9}
JOBS_HELP = (
    f"{EXIT_HELP} `jobs follow`, `jobs start --follow`: 8 the job FAILED, 9 it was CANCELLED."
)

jobs_app = typer.Typer(help=f"Start, list, show, follow and cancel background jobs. {JOBS_HELP}")
JobId = Annotated[str, typer.Argument(help="The job's ID.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the job's ID.")]


def describe(job: Job) -> str:
    """One line: status, percent, units done, stage and message."""
    parts = [job.status, f"{job.progress:.0%}"]
    if job.done is not None and job.total:
        parts.append(f"{job.done:g}/{job.total:g} {job.unit or ''}".rstrip())
    if job.stage:
        parts.append(job.stage)
    if job.message and job.message != job.stage:
        parts.append(job.message)
    if job.error:
        parts.append(f"error: {job.error}")
    return " ".join(parts)


@jobs_app.command("start", epilog=JOBS_HELP)
@fails_readably
def jobs_start(
    kind: Annotated[str, typer.Argument(help="ANALYZE, EXPORT_ARCHIVE, EXPORT_TABLE, CONVERT, …")],
    dataset: Annotated[
        str, typer.Argument(help="[team/]name or ID; name@vN also sets the versionId parameter.")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="KEY=VALUE, repeatable; VALUE is read as JSON when it is (5, true, [..]), "
            "else as text.",
        ),
    ] = None,
    params: Annotated[
        str | None, typer.Option(help="All parameters as one JSON object (--param adds to it).")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="The same key again returns the same job.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow it until it ends (as `jobs follow`).")
    ] = False,
    quiet: Quiet = False,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Start a job on a dataset and print its ID; with --follow, follow it to its end and
    exit 8 if it FAILED, 9 if it was CANCELLED."""
    given = job_params(params, param or [])
    with Client(url, api_key) as client:
        if parse_reference(dataset).version is not None and "versionId" not in given:
            given["versionId"] = client.version(dataset).id
        job = client.start_job(kind, dataset, given, idempotency_key=idempotency_key)
        if quiet:
            typer.echo(job.id)
        elif as_json and not follow:
            emit(job, as_json=True)
        elif not as_json:
            typer.echo(f"{job.kind} {job.id}: {job.status}")
        if follow:
            follow_to_end(client, job.id, quiet=quiet, as_json=as_json)


def job_params(text: str | None, pairs: list[str]) -> dict[str, Any]:
    """The parameters of ``--params`` and ``--param KEY=VALUE``; INVALID if malformed."""
    found: Any = {}
    if text is not None:
        try:
            found = json.loads(text)
        except ValueError as error:
            raise QuiverError(f"--params is not JSON: {error}", code="INVALID") from None
        if not isinstance(found, dict):
            raise QuiverError("--params must be a JSON object", code="INVALID")
    given: dict[str, Any] = found | parse_pairs(pairs, "--param")
    return given


@jobs_app.command("ls", epilog=JOBS_HELP)
@fails_readably
def jobs_ls(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset's ([team/]name).")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only in this status (repeatable): RUNNING, …")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Only of this kind (repeatable): EXPORT_ARCHIVE, …")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 50,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """List the jobs of the datasets you can read, newest first."""
    with Client(url, api_key) as client:
        found: list[Job] = []
        for job in client.jobs(dataset=dataset, status=status, kind=kind):
            found.append(job)
            if len(found) >= limit:
                break
    if as_json:
        return emit(found, as_json=True)
    rows = table("id", "kind", "status", "progress", "dataset", "created", "message")
    for job in found:
        created = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else ""
        rows.add_row(
            job.id, job.kind, job.status, f"{job.progress:.0%}", job.dataset or "", created,
            job.error or job.message or "",
        )  # fmt: skip
    show(rows)


@jobs_app.command("show", epilog=JOBS_HELP)
@fails_readably
def jobs_show(job_id: JobId, as_json: AsJson = False, url: Url = None, api_key: Key = None) -> None:
    """Show a job: status, progress, parameters, result or error."""
    with Client(url, api_key) as client:
        job = client.job(job_id)
    if as_json:
        return emit(job, as_json=True)
    show_fields(job)


@jobs_app.command("follow", epilog=JOBS_HELP)
@fails_readably
def jobs_follow(
    job_id: JobId,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the end.")] = False,
    as_json: AsJson = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Follow a job's progress until it ends: a bar on a terminal, a line per change in a
    pipe. Exits 8 if the job FAILED, 9 if it was CANCELLED."""
    with Client(url, api_key) as client:
        follow_to_end(client, job_id, quiet=quiet, as_json=as_json)


def follow_to_end(client: Client, job_id: str, *, quiet: bool, as_json: bool) -> None:
    """Follow a job, show its progress and end, and exit with the code of how it ended."""
    states = client.follow_job(job_id)
    if quiet or as_json:
        last = _last(states)
    elif sys.stderr.isatty():
        last = _with_bar(states)
    else:
        last = None
        for last in states:
            typer.echo(describe(last), err=True)
    if last is None:
        raise typer.Exit(1)
    if as_json:
        emit(last, as_json=True)
    elif not quiet:
        typer.echo(f"{last.kind} {last.id}: {describe(last)}")
    if last.status in JOB_EXIT_CODES:
        raise typer.Exit(JOB_EXIT_CODES[last.status])


def _last(states: Iterator[Job]) -> Job | None:
    last = None
    for last in states:  # noqa: B007
        pass
    return last


def _with_bar(states: Iterator[Job]) -> Job | None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    last: Job | None = None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=Console(stderr=True),
    ) as bars:
        task = bars.add_task("job", total=1.0, detail="")
        for last in states:
            bars.update(
                task,
                description=f"{last.kind} {last.status}",
                completed=last.progress,
                detail=last.message or last.stage or "",
            )
    return last


@jobs_app.command("cancel", epilog=JOBS_HELP)
@fails_readably
def jobs_cancel(
    job_id: JobId, as_json: AsJson = False, url: Url = None, api_key: Key = None
) -> None:
    """Cancel a job: at once while PENDING, at its next step while RUNNING."""
    with Client(url, api_key) as client:
        job = client.cancel_job(job_id)
    if as_json:
        return emit(job, as_json=True)
    typer.echo(f"{job.kind} {job.id}: {job.status}")
