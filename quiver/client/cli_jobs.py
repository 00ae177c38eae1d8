"""``quiver jobs ls|show|follow|cancel``: background jobs from the command line."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from quiver.client.cli import EXIT_HELP, AsJson, Key, Url, emit, fails_readably, show, table
from quiver.client.client import Client
from quiver.client.jobs import Job

# Past the refusal codes: how a followed job ended.
JOB_EXIT_CODES = {"FAILED": 8, "CANCELLED": 9}
JOBS_HELP = f"{EXIT_HELP} `jobs follow`: 8 the job FAILED, 9 it was CANCELLED."

jobs_app = typer.Typer(help=f"List, show, follow and cancel background jobs. {JOBS_HELP}")
JobId = Annotated[str, typer.Argument(help="The job's ID.")]


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
    rows = table("field", "value")
    for key, value in dataclasses.asdict(job).items():
        rows.add_row(key, "" if value is None else str(value))
    show(rows)


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
    elif quiet:
        pass
    else:
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
