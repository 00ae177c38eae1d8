"""The ``quiver`` command line, run as a real subprocess the way an operator runs it.

``quiver migrate`` is tested by the tests named so; the others start from a copy of the
session's migrated database (``migrated_sqlite``), which is what it makes.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import httpx
from support import (
    POSTGRES_URL,
    PROJECT_DIR,
    database_url_named,
    migrated_sqlite,
    run_quiver_serve,
    run_sql,
    run_uvicorn,
)

from quiver.config import Settings

COMMITTED_SCHEMA = PROJECT_DIR / "schema.graphql"
VIEWER = "{ viewer { name email isAdmin } }"
CREATE_USER = """
mutation { createUser(input: {name: "made-by-cli-admin"}) { user { name } userErrors { code } } }
"""


def clean_environment(**quiver: str) -> dict[str, str]:
    """This process's environment with every QUIVER_* setting blank (the default), but these."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUIVER_")}
    # Blank rather than absent, so run_uvicorn's merge with os.environ cannot bring one back.
    env.update({f"QUIVER_{field.name.upper()}": "" for field in fields(Settings)})
    env.update({f"QUIVER_{key.upper()}": value for key, value in quiver.items()})
    # Plain, wide help output: no colours, no wrapping of option names.
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"})
    return env


def quiver(
    *args: str, env: dict[str, str], cwd: Path = PROJECT_DIR
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quiver", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def report(completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"$ {shlex.join(completed.args)}\nexit code {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    )


def tables_of(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def viewer_of(base_url: str, key: str) -> dict[str, object] | None:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": VIEWER},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    viewer: dict[str, object] | None = response.json()["data"]["viewer"]
    return viewer


def test_migrate_creates_the_database_twice_at_once_and_can_run_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = clean_environment(data_dir=str(data_dir))

    # A server starting while `quiver apikey create` runs: both migrate the new file.
    with ThreadPoolExecutor(2) as pool:
        first, alongside = pool.map(lambda _: quiver("migrate", env=env), range(2))
    tables_after_first = tables_of(data_dir / "quiver.db")
    second = quiver("migrate", env=env)

    assert first.returncode == 0, report(first)
    assert alongside.returncode == 0, report(alongside)
    assert second.returncode == 0, report(second)
    assert f"Database is up to date: sqlite://{data_dir / 'quiver.db'}" in first.stdout
    assert {"quiver_dataset", "quiver_user", "quiver_api_key"} <= tables_after_first
    assert tables_of(data_dir / "quiver.db") == tables_after_first


def test_the_data_dir_flag_wins_over_the_environment(tmp_path: Path) -> None:
    env = clean_environment(data_dir=str(tmp_path / "from-env"))

    completed = quiver("migrate", "--data-dir", str(tmp_path / "from-flag"), env=env)

    assert completed.returncode == 0, report(completed)
    assert (tmp_path / "from-flag" / "quiver.db").is_file()
    assert not (tmp_path / "from-env" / "quiver.db").exists()


def test_apikey_create_admin_prints_a_key_that_authenticates_as_an_admin(tmp_path: Path) -> None:
    env = clean_environment(data_dir=str(tmp_path))
    migrated_sqlite(tmp_path / "quiver.db")

    created = quiver("apikey", "create", "--admin", "--name", "x", env=env)
    again = quiver("apikey", "create", "--admin", "--name", "y", env=env)

    assert created.returncode == 0, report(created)
    assert again.returncode == 0, report(again)
    key = created.stdout.strip()
    other_key = again.stdout.strip()
    assert key.startswith("qvr_")
    assert "\n" not in key
    assert other_key != key
    with run_uvicorn(clean_environment(data_dir=str(tmp_path))) as base_url:
        viewer = viewer_of(base_url, key)
        same_admin = viewer_of(base_url, other_key)
        response = httpx.post(
            f"{base_url}/graphql",
            json={"query": CREATE_USER},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    assert viewer is not None
    assert viewer["isAdmin"] is True
    assert same_admin == viewer
    assert response.json()["data"]["createUser"] == {
        "user": {"name": "made-by-cli-admin"},
        "userErrors": [],
    }


def test_apikey_create_for_an_email_makes_that_users_key(tmp_path: Path) -> None:
    env = clean_environment(data_dir=str(tmp_path))
    migrated_sqlite(tmp_path / "quiver.db")

    created = quiver(
        "apikey", "create", "--name", "notebook", "--user-email", "ann@example.org", env=env
    )

    assert created.returncode == 0, report(created)
    key = created.stdout.strip()
    with run_uvicorn(env) as base_url:
        viewer = viewer_of(base_url, key)
    assert viewer == {"name": "ann", "email": "ann@example.org", "isAdmin": False}


def test_the_database_keeps_only_a_hash_of_a_cli_key(tmp_path: Path) -> None:
    env = clean_environment(data_dir=str(tmp_path))
    migrated_sqlite(tmp_path / "quiver.db")

    created = quiver("apikey", "create", "--admin", "--name", "x", env=env)

    key = created.stdout.strip()
    with sqlite3.connect(tmp_path / "quiver.db") as connection:
        rows = connection.execute("SELECT * FROM quiver_api_key").fetchall()
    assert len(rows) == 1
    assert key not in repr(rows)


def test_committed_schema_matches_the_code(tmp_path: Path) -> None:
    completed = quiver("schema", env=clean_environment(data_dir=str(tmp_path)))

    assert completed.returncode == 0, report(completed)
    assert completed.stdout == COMMITTED_SCHEMA.read_text("utf-8"), (
        "schema.graphql is stale: run `quiver schema --output schema.graphql` and commit it"
    )


def test_schema_output_writes_the_same_sdl_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    env = clean_environment(data_dir=str(tmp_path / "data"))

    written = quiver("schema", "--output", str(target), env=env)
    printed = quiver("schema", env=env)

    assert written.returncode == 0, report(written)
    assert written.stdout == ""
    assert target.read_text("utf-8") == printed.stdout
    assert printed.stdout.startswith("schema @link(")


def test_commands_that_need_no_database_write_nothing(tmp_path: Path) -> None:
    # `quiver schema` runs in CI from a checkout; it must not create ./quiver-data there.
    completed = quiver("schema", env=clean_environment(), cwd=tmp_path)

    assert completed.returncode == 0, report(completed)
    assert list(tmp_path.iterdir()) == []


def test_serve_help_lists_host_port_and_reload(tmp_path: Path) -> None:
    completed = quiver("serve", "--help", env=clean_environment(data_dir=str(tmp_path)))

    assert completed.returncode == 0, report(completed)
    for option in ("--host", "--port", "--reload", "--data-dir", "--database-url"):
        assert option in completed.stdout, report(completed)


def test_the_top_level_help_lists_every_command(tmp_path: Path) -> None:
    completed = quiver("--help", env=clean_environment(data_dir=str(tmp_path)))

    assert completed.returncode == 0, report(completed)
    for command in ("serve", "migrate", "apikey", "schema"):
        assert command in completed.stdout, report(completed)


def test_gc_expires_abandoned_uploads_and_reports_what_it_collected(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = clean_environment(data_dir=str(data_dir))
    migrated_sqlite(data_dir / "quiver.db")
    stale = data_dir / "blobs" / "staging" / "abandoned"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half an upload")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))

    dry = quiver("gc", "--dry-run", env=env)
    assert dry.returncode == 0, report(dry)
    assert "Would delete 0 blobs (0 bytes), 1 stale staging objects, 0 strays" in dry.stdout
    assert stale.exists()

    collected = quiver("gc", env=env)
    assert collected.returncode == 0, report(collected)
    assert "Removed 0 expired uploads" in collected.stdout
    assert "Deleted 0 blobs (0 bytes), 1 stale staging objects, 0 strays" in collected.stdout
    assert not stale.exists()


def test_gc_removes_stale_temporary_files_and_keeps_fresh_ones(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = clean_environment(data_dir=str(data_dir))
    migrated_sqlite(data_dir / "quiver.db")
    # A crashed importArchive's spooled copy, and one an import is reading right now.
    stale = data_dir / "tmp" / "archive-crashed.zip"
    fresh = data_dir / "tmp" / "archive-importing.zip"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"PK half an archive")
    fresh.write_bytes(b"PK an archive being imported")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))

    dry = quiver("gc", "--dry-run", env=env)
    assert dry.returncode == 0, report(dry)
    assert "1 stale temporary files" in dry.stdout, report(dry)
    assert stale.exists()

    collected = quiver("gc", env=env)
    assert collected.returncode == 0, report(collected)
    assert "1 stale temporary files" in collected.stdout, report(collected)
    assert not stale.exists()
    assert fresh.exists()


def test_apikey_create_without_a_database_names_where_it_looked_and_creates_nothing(
    tmp_path: Path,
) -> None:
    # Run from a directory that holds no quiver-data, as a user in another terminal does.
    created = quiver(
        "apikey", "create", "--admin", "--name", "me", env=clean_environment(), cwd=tmp_path
    )

    assert created.returncode != 0, report(created)
    assert created.stdout == ""
    assert "No Quiver database in" in created.stderr, report(created)
    assert str((tmp_path / "quiver-data").absolute()) in created.stderr, report(created)
    assert "--data-dir" in created.stderr, report(created)
    assert "QUIVER_DATA_DIR" in created.stderr, report(created)
    assert list(tmp_path.iterdir()) == []


def test_apikey_create_with_user_names_the_admin_it_creates(tmp_path: Path) -> None:
    env = clean_environment(data_dir=str(tmp_path))
    migrated_sqlite(tmp_path / "quiver.db")

    created = quiver("apikey", "create", "--admin", "--name", "laptop", "--user", "ada", env=env)

    assert created.returncode == 0, report(created)
    with run_uvicorn(env) as base_url:
        viewer = viewer_of(base_url, created.stdout.strip())
    assert viewer == {"name": "ada", "email": None, "isAdmin": True}


def test_apikey_create_help_says_what_name_and_user_are(tmp_path: Path) -> None:
    completed = quiver("apikey", "create", "--help", env=clean_environment(data_dir=str(tmp_path)))

    assert completed.returncode == 0, report(completed)
    assert "--name" in completed.stdout
    assert "A name for the key" in completed.stdout, report(completed)
    assert "--user " in completed.stdout, report(completed)
    assert "The name of the admin user" in completed.stdout, report(completed)


def test_serve_refuses_several_workers_on_sqlite_with_the_reason(tmp_path: Path) -> None:
    completed = quiver(
        "serve", "--workers", "2", env=clean_environment(data_dir=str(tmp_path / "data"))
    )

    assert completed.returncode == 2, report(completed)
    assert "needs PostgreSQL" in completed.stderr, report(completed)
    assert "database is locked" in completed.stderr, report(completed)
    assert not (tmp_path / "data").exists()  # nothing was started or made


def worker_processes(port: int) -> list[int]:
    """The processes uvicorn spawned for the server listening on ``port``."""
    commands = {
        int(entry.name): (entry / "cmdline").read_bytes().split(b"\0")
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (entry / "cmdline").exists()
    }
    parents = [pid for pid, argv in commands.items() if str(port).encode() in argv]
    children = []
    for pid, argv in commands.items():
        with contextlib.suppress(FileNotFoundError):
            parent = int(
                (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
            if parent in parents and any(b"spawn_main" in part for part in argv):
                children.append(pid)
    return children


def test_serve_runs_several_workers_on_postgresql_migrated_once(tmp_path: Path) -> None:
    name = f"quiver_test_{uuid.uuid4().hex[:12]}"
    run_sql(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    try:
        env = clean_environment(
            data_dir=str(tmp_path / "data"),
            database_url=database_url_named(name),
            admin_api_key="qvr_cli-workers-admin",
        )
        with run_quiver_serve(PROJECT_DIR, env, "--workers", "2") as base_url:
            port = int(base_url.rsplit(":", 1)[1])
            assert len(worker_processes(port)) == 2
            headers = {"Authorization": "Bearer qvr_cli-workers-admin"}
            with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
                answers = [client.post("/graphql", json={"query": VIEWER}) for _ in range(20)]
        assert {answer.status_code for answer in answers} == {200}
        assert answers[0].json()["data"]["viewer"]["isAdmin"] is True
    finally:
        run_sql(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
