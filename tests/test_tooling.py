"""The project's own checks (ruff, mypy, hadolint, migrations, the CI script) as tests."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI_SCRIPT = ROOT / ".ci" / "run"

RUN_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/quiver serve"
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
)

# Runs in a fresh interpreter: Tortoise keeps process-wide state, and quiver.db reads the
# environment when it is imported.
PENDING_MIGRATIONS_SCRIPT = """
import asyncio
import sys

from tortoise.cli import utils
from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector


async def pending_migrations():
    # What `tortoise makemigrations` would write (same config lookup), without writing it.
    config = utils.get_tortoise_config(utils.tortoise_orm_config())
    apps = {label: app.to_dict() for label, app in config.apps.items()}
    unmigrated = sorted(label for label, app in apps.items() if not app.get("migrations"))
    if unmigrated:
        sys.exit(f"apps without a migrations module are never checked: {unmigrated}")
    config_dict = config.to_dict()
    config_dict["apps"] = apps
    async with TortoiseContext() as context:
        await context.init(config=config_dict, init_connections=False)
        writers = await MigrationAutodetector(context.apps, apps).changes()
    return [f"# {writer.app_label}.{writer.name}\\n{writer.as_string()}" for writer in writers]


pending = asyncio.run(pending_migrations())
for migration in pending:
    print(migration)
sys.exit(1 if pending else 0)
"""


def run(
    command: Sequence[str | Path],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def report(completed: subprocess.CompletedProcess[str]) -> str:
    """The command, its exit code and everything it printed, for assertion messages."""
    return (
        f"$ {shlex.join(completed.args)}\n"
        f"exit code {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout}\n"
        f"--- stderr ---\n{completed.stderr}"
    )


def installed_script(name: str) -> Path:
    """A console script from the environment running the tests (the venv's bin/)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: pip install -e '.[test]'")
    return path


def bash() -> str:
    path = shutil.which("bash")
    if path is None:
        pytest.fail("bash is required to run .ci/run")
    return path


def environment_without_ci() -> dict[str, str]:
    """The current environment minus CI, so .ci/run does not go looking for services."""
    env = dict(os.environ)
    env.pop("CI", None)
    return env


def test_ruff_finds_nothing() -> None:
    completed = run([installed_script("ruff"), "check", "."])

    assert completed.returncode == 0, report(completed)


def test_mypy_strict_passes() -> None:
    completed = run([sys.executable, "-m", "mypy"], timeout=900)

    assert completed.returncode == 0, report(completed)


def test_dockerfile_passes_hadolint() -> None:
    completed = run([installed_script("hadolint"), "--no-color", "Dockerfile"])

    assert completed.returncode == 0, report(completed)
    assert completed.stdout.strip() == "", report(completed)


def test_migrations_match_the_models(tmp_path: Path) -> None:
    migrations = ROOT / "quiver" / "migrations"
    files_before = sorted(migrations.rglob("*"))
    env = dict(os.environ)
    env.pop("TORTOISE_ORM", None)  # would override [tool.tortoise] in pyproject.toml
    env |= {
        "QUIVER_DATA_DIR": str(tmp_path),
        "QUIVER_DATABASE_URL": f"sqlite://{tmp_path / 'quiver.db'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    completed = run([sys.executable, "-c", PENDING_MIGRATIONS_SCRIPT], env=env)

    assert completed.returncode == 0, (
        "the models have changes no migration records; run `tortoise makemigrations`\n"
        + report(completed)
    )
    assert sorted(migrations.rglob("*")) == files_before


def test_readme_commands_are_the_ones_ci_runs() -> None:
    readme_path = ROOT / "README.md"
    assert readme_path.is_file(), "README.md is missing"
    readme = readme_path.read_text(encoding="utf-8")

    assert f"<!-- run-command -->\n```sh\n{RUN_COMMAND}\n```\n" in readme
    assert f"<!-- test-command -->\n```sh\n{TEST_COMMAND}\n```\n" in readme
    completed = run([bash(), CI_SCRIPT, "--print-test-command"])
    assert completed.returncode == 0, report(completed)
    assert completed.stdout == f"{TEST_COMMAND}\n"


def test_ci_extracts_only_the_block_after_the_test_command_marker(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Example\n\n"
        "<!-- run-command -->\n```sh\nmake serve\n```\n\n"
        "```sh\necho not this one\n```\n\n"
        "<!-- test-command -->\n\n```sh\nmake deps &&\n  make test\n```\n\n"
        "```sh\necho nor this one\n```\n",
        encoding="utf-8",
    )

    completed = run([bash(), CI_SCRIPT, "--print-test-command", readme])

    assert completed.returncode == 0, report(completed)
    assert completed.stdout == "make deps &&\n  make test\n"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("# Example\n\n```sh\nmake test\n```\n", "no <!-- test-command --> marker"),
        ("<!-- test-command -->\nRun make test.\n", "no fenced block right after"),
        ("<!-- test-command -->\n```sh\nmake test\n", "never closed"),
        ("<!-- test-command -->\n```sh\n\n```\n", "block is empty"),
    ],
    ids=["no-marker", "no-fence", "unclosed-fence", "empty-block"],
)
def test_ci_refuses_a_readme_without_a_test_command(
    tmp_path: Path, text: str, complaint: str
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")

    completed = run([bash(), CI_SCRIPT, "--print-test-command", readme])

    assert completed.returncode != 0, report(completed)
    assert complaint in completed.stderr, report(completed)
    assert completed.stdout == ""


def test_ci_runs_the_readme_test_command_and_exits_with_its_code(tmp_path: Path) -> None:
    (tmp_path / ".ci").mkdir()
    shutil.copy2(CI_SCRIPT, tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text(
        '<!-- test-command -->\n```sh\necho "ran in $PWD" > ran.txt && exit 7\n```\n',
        encoding="utf-8",
    )

    completed = run([bash(), ".ci/run"], cwd=tmp_path, env=environment_without_ci())

    assert completed.returncode == 7, report(completed)
    assert (tmp_path / "ran.txt").read_text(encoding="utf-8") == f"ran in {tmp_path}\n"
