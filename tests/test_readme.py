"""The README's commands, pasted in order into a shell beside a running `quiver serve`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import PROJECT_DIR, run_quiver_serve

README = PROJECT_DIR / "README.md"
# ```sh blocks, with the marker comment on the line before, if any.
SHELL_BLOCK = re.compile(r"(?:<!-- ([\w-]+) -->\n)?```sh\n(.*?)```", re.DOTALL)
# Blocks that install Quiver (and start it, or run the suite): the test's own setup.
INSTALLING = {"run-command", "test-command"}
README_ADDRESS = "127.0.0.1:8000"
BLOCK_END = "### end of README block"


def shell_blocks_talking_to_the_server(readme: str) -> list[str]:
    return [block for marker, block in SHELL_BLOCK.findall(readme) if marker not in INSTALLING]


def user_environment(home: Path) -> dict[str, str]:
    """A user's shell: no QUIVER_* settings, so Quiver keeps its data in ./quiver-data; the
    client's config and cache in ``home``, not the real user's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUIVER_")}
    return env | {"XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}


def run_pasted(blocks: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run the blocks one after another in one bash, as pasted; the output of each."""
    script = "".join(f"{block}echo '{BLOCK_END}'\n" for block in blocks)
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, (
        f"the README's commands failed (exit code {completed.returncode}):\n{script}\n"
        f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    )
    return [output.strip() for output in completed.stdout.split(BLOCK_END + "\n")[:-1]]


def graphql_data(output: str) -> Any:
    body = json.loads(output)
    assert "errors" not in body, body
    return body["data"]


def test_the_readmes_shell_commands_run_in_order_against_a_live_server(tmp_path: Path) -> None:
    readme = README.read_text("utf-8")
    # The reader's checkout: the README beside the virtual environment Quiver is installed in.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    shutil.copy(README, tmp_path / "README.md")
    env = user_environment(tmp_path / "home")

    with run_quiver_serve(tmp_path, env) as base_url:
        address = base_url.removeprefix("http://")
        blocks = [
            block.replace(README_ADDRESS, address)
            for block in shell_blocks_talking_to_the_server(readme)
        ]
        outputs = run_pasted(blocks, tmp_path, env)

    assert len(outputs) == 6, outputs
    key, created, dataset_id, upload, pushed, labelled = outputs
    assert re.fullmatch(r"qvr_\S+", key), key
    assert graphql_data(created)["createDataset"] == {
        "dataset": {"name": "dogs", "type": "IMAGE"},
        "userErrors": [],
    }
    assert re.fullmatch(r"[\w=-]+", dataset_id), dataset_id
    readme_sha256 = hashlib.sha256(README.read_bytes()).hexdigest()
    assert graphql_data(upload)["uploadFile"] == {
        "file": {"path": "docs/README.md", "sha256": readme_sha256},
        "userErrors": [],
    }
    assert (tmp_path / "quiver-data" / "quiver.db").is_file()
    assert "1 added, 0 changed, 0 deleted, 0 unchanged" in pushed, pushed
    assert "committed as v1" in pushed, pushed
    assert (tmp_path / "docs-copy" / "README.md").read_bytes() == README.read_bytes()
    for shown in ("draft", "final", "SUCCEEDED", "EXPORT_ARCHIVE"):
        assert shown in labelled, labelled


def test_the_readme_stands_alone_linking_nothing_outside_the_repository() -> None:
    readme = README.read_text("utf-8")

    outside = re.findall(r"\.\./[\w./-]+", readme)

    assert outside == []
