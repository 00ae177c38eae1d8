"""``quiver serve | worker | migrate | apikey create | schema``, and the client's commands."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# `import httpx` imports httpx's own command line, and with it rich.syntax, pygments and more:
# a third of this command's start-up. It is never run here, so it is not imported (httpx
# falls back to a stub `httpx.main`).
if "httpx" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]

from quiver.client.cli import register as register_client_commands
from quiver.config import Settings

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from quiver.resolvers.gc import GarbageReport

T = TypeVar("T")

# The server's modules (Tortoise, the schema) are imported by the commands that need them, so
# the client's commands start fast.

app = typer.Typer(
    help="Quiver: a GraphQL server for machine-learning datasets.", no_args_is_help=True
)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")

DataDir = Annotated[
    Path | None, typer.Option(help="Where the SQLite file and blobs live (QUIVER_DATA_DIR).")
]
DatabaseUrl = Annotated[
    str | None, typer.Option(help="sqlite://PATH or postgres://… (QUIVER_DATABASE_URL).")
]


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    settings = Settings.from_env()
    changes: dict[str, object] = {}
    if data_dir is not None:
        changes["data_dir"] = data_dir
    if database_url:
        changes["database_url"] = database_url
    return settings.with_overrides(**changes) if changes else settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart when the code changes.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Worker processes; more than one needs PostgreSQL (not with --reload)."
        ),
    ] = 1,
    worker: Annotated[
        bool,
        typer.Option(
            help="Run jobs inside the server (--no-worker: API only, jobs run in `quiver "
            "worker` processes)."
        ),
    ] = True,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve GraphQL (and GraphiQL in a browser) at http://HOST:PORT/graphql."""
    import os

    import uvicorn

    settings = _settings(data_dir, database_url)
    if workers > 1:
        _prepare_workers(settings, reload=reload)
    # uvicorn imports the app by name (needed for reload and workers), so the settings
    # travel through the environment that quiver.app reads.
    os.environ["QUIVER_DATA_DIR"] = str(settings.data_dir)
    os.environ["QUIVER_DATABASE_URL"] = settings.database_url
    os.environ["QUIVER_STORAGE_URL"] = settings.storage_url
    if not worker:
        os.environ["QUIVER_WORKER_CONCURRENCY"] = "0"
    processes = f", {workers} workers" if workers > 1 else ""
    typer.echo(
        f"Quiver on http://{host}:{port}/graphql  (data: {settings.database_url}{processes})"
    )
    uvicorn.run("quiver.app:app", host=host, port=port, reload=reload, workers=workers)


def _prepare_workers(settings: Settings, *, reload: bool) -> None:
    """Refuse what several processes cannot share; migrate and make the admin key once, so
    that the workers do not race each other at start-up."""
    import os

    if reload:
        typer.echo("--reload runs one process: leave out --workers or --reload.", err=True)
        raise typer.Exit(code=2)
    if not settings.database_url.startswith(("postgres://", "postgresql://")):
        typer.echo(
            "--workers above 1 needs PostgreSQL (QUIVER_DATABASE_URL=postgres://…): SQLite lets "
            "one process write at a time, so workers would wait on each other's locks and "
            "fail with 'database is locked' under load. Serve SQLite with one worker.",
            err=True,
        )
        raise typer.Exit(code=2)
    from quiver import db

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.migrate_on_start:
        _run(db.migrate(settings))
    if settings.admin_api_key:
        _run(_ensure_admin_key(settings))
    os.environ["QUIVER_MIGRATE_ON_START"] = "false"


async def _ensure_admin_key(settings: Settings) -> None:
    from tortoise import Tortoise

    from quiver import db
    from quiver.auth import ensure_admin_key

    await Tortoise.init(config=db.tortoise_config(settings.database_url))
    try:
        await ensure_admin_key(settings.admin_api_key)
    finally:
        await Tortoise.close_connections()


@app.command(name="worker")
def worker_command(
    concurrency: Annotated[int, typer.Option(help="Jobs run at the same time.", min=1)] = 2,
    kinds: Annotated[
        str | None,
        typer.Option(help="Only these job kinds, comma-separated (e.g. ANALYZE,CONVERT)."),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run jobs from the database's queue until SIGTERM or SIGINT (then hand back or finish
    the running ones). Several workers share one PostgreSQL database."""
    import logging

    from quiver.jobs.worker import run
    from quiver.models import JobKind

    settings = _settings(data_dir, database_url)
    chosen: list[JobKind] | None = None
    if kinds:
        try:
            chosen = [JobKind(name.strip().upper()) for name in kinds.split(",") if name.strip()]
        except ValueError:
            known = ", ".join(kind.value for kind in JobKind)
            typer.echo(f"--kinds takes job kinds among {known}", err=True)
            raise typer.Exit(code=2) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(f"Quiver worker on {settings.database_url} ({concurrency} at a time)")
    _run(run(settings, concurrency=concurrency, kinds=chosen))


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date."""
    from quiver import db

    settings = _settings(data_dir, database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _run(db.migrate(settings))
    typer.echo(f"Database is up to date: {settings.database_url}")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[
        str, typer.Option(help="A name for the key, to tell it apart later (e.g. laptop, ci).")
    ],
    admin: Annotated[bool, typer.Option(help="Make the key's user an admin.")] = False,
    user: Annotated[
        str | None,
        typer.Option(
            help="The name of the admin user the key belongs to (created if there is none "
            "of that name); default: the first admin, or a new one named admin."
        ),
    ] = None,
    user_email: Annotated[
        str | None,
        typer.Option(help="Instead, the user with this e-mail (created if new, named by --user)."),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key in an existing Quiver database and print it once (only its hash is
    stored). Run it where `quiver serve` runs, or point it there with --data-dir."""
    settings = _settings(data_dir, database_url)
    missing = _missing_sqlite_database(settings)
    if missing is not None:
        # A new empty database would print a key the running server has never heard of.
        typer.echo(
            f"No Quiver database in {missing.parent.absolute()} (no {missing.name} there). "
            "Point to the server's data directory with --data-dir or QUIVER_DATA_DIR (or its "
            "database with --database-url), or start it there first with `quiver serve` or "
            "`quiver migrate`.",
            err=True,
        )
        raise typer.Exit(code=1)
    secret = _run(_create_key(settings, name, admin=admin, user_name=user, email=user_email))
    typer.echo(secret)


def _missing_sqlite_database(settings: Settings) -> Path | None:
    """The SQLite file the settings name, when it does not exist (None: it does, or not SQLite)."""
    scheme, _, path = settings.database_url.partition("://")
    if scheme != "sqlite" or path in ("", ":memory:"):
        return None
    database = Path(path)
    return None if database.is_file() else database


async def _create_key(
    settings: Settings, name: str, *, admin: bool, user_name: str | None, email: str | None
) -> str:
    from tortoise import Tortoise

    from quiver import db
    from quiver.auth import create_user, generate_api_key
    from quiver.models import ApiKey, User

    await db.migrate(settings)
    await Tortoise.init(config=db.tortoise_config(settings.database_url))
    try:
        if email is not None:
            user = await User.get_or_none(email=email) or await create_user(
                user_name or email.split("@")[0], email=email, is_admin=admin
            )
        else:
            admins = User.filter(is_admin=True).order_by("id")
            if user_name is not None:
                admins = admins.filter(name=user_name)
            user = await admins.first() or await create_user(user_name or "admin", is_admin=True)
        if admin and not user.is_admin:
            user.is_admin = True
            await user.save(update_fields=["is_admin"])
        key = generate_api_key()
        await ApiKey.create(user=user, name=name, prefix=key.prefix, key_hash=key.key_hash)
        return key.secret
    finally:
        await Tortoise.close_connections()


@app.command()
def gc(
    grace_minutes: Annotated[
        int, typer.Option(help="Spare blobs touched this recently (uploads in flight).")
    ] = 60,
    dry_run: Annotated[bool, typer.Option(help="Report what would go; delete nothing.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete stored bytes that no file and no version references any more, temporary
    files a crashed request left in the data directory, and job results and logs older
    than QUIVER_JOB_RETENTION_HOURS."""
    settings = _settings(data_dir, database_url)
    report = _run(_collect(settings, timedelta(minutes=grace_minutes), dry_run=dry_run))
    verb = "Would delete" if dry_run else "Deleted"
    typer.echo(
        f"{verb} {report.blobs_deleted} blobs ({report.bytes_freed} bytes), "
        f"{report.staging_deleted} stale staging objects, {report.strays_deleted} strays, "
        f"{report.cached_tables_deleted} cached tables, "
        f"{report.temp_files_deleted} stale temporary files, "
        f"{report.multipart_aborted} abandoned multipart uploads, "
        f"{report.direct_uploads_expired} expired direct uploads, "
        f"{report.job_results_forgotten} job results and "
        f"{report.job_logs_pruned} job log entries older than "
        f"{settings.job_retention_hours} h"
    )


async def _collect(settings: Settings, grace: timedelta, *, dry_run: bool) -> GarbageReport:
    from tortoise import Tortoise

    from quiver import db
    from quiver.resolvers.gc import collect_garbage
    from quiver.resolvers.uploads import expire_uploads
    from quiver.storage import storage_from_url

    await Tortoise.init(config=db.tortoise_config(settings.database_url))
    storage = storage_from_url(settings.storage_url)
    try:
        if not dry_run:
            # Expired uploads go first, so the bytes only they held are collected now.
            expired = await expire_uploads(settings)
            typer.echo(f"Removed {expired} expired uploads")
        return await collect_garbage(
            storage,
            grace=grace,
            dry_run=dry_run,
            cache_dir=settings.cache_dir,
            tmp_dir=settings.tmp_dir,
            job_retention=timedelta(hours=settings.job_retention_hours),
        )
    finally:
        await storage.close()
        await Tortoise.close_connections()


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
) -> None:
    """Print the GraphQL schema (SDL), as committed in schema.graphql."""
    from quiver.schema import schema as graphql_schema

    sdl = graphql_schema.as_str() + "\n"
    if output is None:
        typer.echo(sdl, nl=False)
    else:
        output.write_text(sdl, encoding="utf-8")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    # asyncio loads here, for the server's commands: the client's never need it.
    import asyncio

    return asyncio.run(coroutine)


def main() -> None:
    app()


# The client's commands (login, datasets, versions, push, pull, stats).
register_client_commands(app)
