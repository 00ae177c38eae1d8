"""``quiver push`` / ``quiver pull`` as a user runs them, against a live server: a tree of
nested, unicode-named, empty and large files; a push killed with SIGKILL and run again sends
each byte about once; pull reproduces the tree byte for byte and a second pull downloads
nothing; a terminal gets progress bars, a pipe plain lines."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import ADMIN_KEY, LiveServer, migrated_sqlite, run_in_pty, run_uvicorn

from quiver.client import Client
from quiver.client.blob_cache import BlobCache
from quiver.client.state import StateDB

HERE = Path(__file__).resolve().parent
SMALL_FILES = 2000
SMALL_MAX = 16 * 1024
LARGE_SIZE = 300 * 1024 * 1024  # the one 300 MB file, sent by resumable tus


def make_tree(
    root: Path, *, small: int = SMALL_FILES, large: int = LARGE_SIZE, seed: int = 14
) -> int:
    """A tree of ``small`` files in nested folders plus one large file; its total size."""
    rng = random.Random(seed)
    total = 0
    for index in range(small):
        folder = root / f"d{index % 7}" / f"sub{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"ünï-{index}-名前.bin" if index % 50 == 0 else f"f{index}.bin"
        size = 0 if index % 100 == 0 else rng.randint(1, SMALL_MAX)
        (folder / name).write_bytes(rng.randbytes(size))
        total += size
    with (root / "large.bin").open("wb") as out:
        for _ in range(large // (1024 * 1024)):
            out.write(rng.randbytes(1024 * 1024))
    return total + large


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def quiver(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quiver", *args],
        env=server.env() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_killed_push_resumes_and_pull_reproduces_the_tree(
    live_server: LiveServer, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    size = make_tree(tree)
    with Client(live_server.url, live_server.key) as client:
        client.create_dataset("resumed")
    before = live_server.bytes_received()

    # --workers 1 and the large file first in the queue make the kill land mid-file.
    command = [sys.executable, "-m", "quiver", "push", str(tree), "resumed", "--workers", "2"]
    pushing = subprocess.Popen(command, env=live_server.env(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while live_server.bytes_received() - before < LARGE_SIZE // 3:
        assert pushing.poll() is None, "the push ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pushing.send_signal(signal.SIGKILL)
    pushing.wait()
    assert pushing.returncode == -signal.SIGKILL

    again = quiver(live_server, "push", str(tree), "resumed", "-m", "all of it")
    assert again.returncode == 0, again.stderr
    assert "committed as v1" in again.stdout
    received = live_server.bytes_received() - before
    # Every byte once, give or take the small files (or pack) in flight when it was killed.
    assert size <= received <= size + 2 * 8 * 1024 * 1024, (size, received)

    out = tmp_path / "out"
    pulled = quiver(live_server, "pull", "resumed@v1", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert tree_bytes(out) == tree_bytes(tree)
    assert not list(out.rglob("*.incomplete"))

    second = quiver(live_server, "pull", "resumed@v1", str(out), "--json")
    assert second.returncode == 0, second.stderr
    assert '"downloaded_files": 0' in second.stdout
    assert '"unchanged": 2001' in second.stdout

    unchanged = quiver(live_server, "push", str(tree), "resumed", "--json")
    assert '"uploaded_files": 0' in unchanged.stdout
    assert '"version": null' in unchanged.stdout


def test_push_filters_deletes_and_refuses_a_moved_parent(
    live_server: LiveServer, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "keep").mkdir(parents=True)
    (tree / "keep" / "a.txt").write_text("a")
    (tree / "keep" / "b.log").write_text("b")
    (tree / "skip.txt").write_text("s")
    quiver(live_server, "datasets", "create", "filtered")
    first = quiver(
        live_server, "push", str(tree), "filtered", "--include", "keep/*", "--exclude", "*.log"
    )
    assert first.returncode == 0, first.stderr
    with Client(live_server.url, live_server.key) as client:
        assert [f.path for f in client.files("filtered")] == ["keep/a.txt"]

    (tree / "keep" / "a.txt").unlink()
    (tree / "keep" / "c.txt").write_text("c")
    dry = quiver(
        live_server, "push", str(tree), "filtered", "--delete", "--dry-run", "--include", "keep/*"
    )
    assert "add keep/c.txt" in dry.stdout
    assert "delete keep/a.txt" in dry.stdout
    mirrored = quiver(
        live_server, "push", str(tree), "filtered@v1", "--delete", "--include", "keep/*"
    )
    assert mirrored.returncode == 0, mirrored.stderr
    with Client(live_server.url, live_server.key) as client:
        assert [f.path for f in client.files("filtered")] == ["keep/b.log", "keep/c.txt"]

    stale = quiver(live_server, "push", str(tree), "filtered@v1")
    assert stale.returncode == 4
    assert stale.stderr.strip() == "error: CONFLICT: filtered is at v2, not v1"


def test_cli_errors_are_one_line_with_the_code(live_server: LiveServer) -> None:
    missing = quiver(live_server, "datasets", "show", "no-such-dataset")
    assert missing.returncode == 3
    assert missing.stderr == "error: NOT_FOUND: Dataset 'no-such-dataset' was not found\n"
    unauthenticated = subprocess.run(
        [sys.executable, "-m", "quiver", "datasets", "create", "x"],
        env=live_server.env() | {"QUIVER_API_KEY": "qvr_wrong"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert unauthenticated.returncode == 5
    assert unauthenticated.stderr.startswith("error: UNAUTHENTICATED: ")
    assert "Traceback" not in unauthenticated.stderr
    assert "Exit codes:" in quiver(live_server, "push", "--help").stdout


def test_login_saves_the_server_for_later_commands(live_server: LiveServer) -> None:
    env = live_server.env()
    del env["QUIVER_URL"], env["QUIVER_API_KEY"]
    command = [sys.executable, "-m", "quiver", "login", "--url", live_server.url]
    done = subprocess.run(
        [*command, "--api-key", live_server.key],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "as admin" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "quiver", "datasets", "ls", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.lstrip().startswith("[")


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_pipe(
    live_server: LiveServer, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, small=40, large=4 * 1024 * 1024, seed=41)
    quiver(live_server, "datasets", "create", "shown")
    piped = quiver(live_server, "push", str(tree), "shown")
    assert "hashing: 41 files" in piped.stderr
    # 40 or 41: the empty file's (empty) blob may already be stored by an earlier test.
    assert re.search(r"^uploading: 4[01] files, 4\d{6} bytes$", piped.stderr, re.MULTILINE)
    assert "\x1b[" not in piped.stderr

    out = tmp_path / "out"
    command = [sys.executable, "-m", "quiver", "pull", "shown", str(out)]
    env = live_server.env() | {"TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    screen = run_in_pty(command, env)
    assert "downloading" in screen
    assert "━" in screen  # rich's bar
    assert "41 files" in screen


def test_push_waits_out_429_answers_and_finishes(tmp_path: Path) -> None:
    root = tmp_path / "server"
    (root / "data").mkdir(parents=True)
    log = root / "bytes.log"
    env = {
        "QUIVER_DATA_DIR": str(root / "data"),
        "QUIVER_DATABASE_URL": migrated_sqlite(root / "data" / "quiver.db"),
        "QUIVER_STORAGE_URL": f"file://{root / 'data' / 'blobs'}",
        "QUIVER_ADMIN_API_KEY": ADMIN_KEY,
        "QUIVER_TEST_BYTES_LOG": str(log),
        "QUIVER_TEST_THROTTLE_EVERY": "3",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    tree = tmp_path / "tree"
    make_tree(tree, small=30, large=20 * 1024 * 1024, seed=429)
    with run_uvicorn(env, app="counting_app:app") as url:
        server = LiveServer(url, ADMIN_KEY, log, tmp_path / "home")
        quiver(server, "datasets", "create", "throttled")
        pushed = quiver(server, "push", str(tree), "throttled", "--workers", "2")
        assert pushed.returncode == 0, pushed.stderr
        out = tmp_path / "out"
        assert quiver(server, "pull", "throttled@v1", str(out)).returncode == 0
    assert tree_bytes(out) == tree_bytes(tree)
    # The push and pull succeeded although some of their requests were refused with 429
    # (uploads: about 10 requests; downloads: 31 GETs).
    assert log.read_text(encoding="ascii").count("THROTTLED") >= 10


def test_a_re_push_trusts_its_record_only_while_the_dataset_is_as_it_left_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("aaaa")
    (tree / "b.txt").write_text("bbbb")
    env = live_server.env() | {"QUIVER_CACHE_DIR": str(tmp_path / "cache")}
    state = StateDB(tmp_path / "cache" / "state.db")  # the one the CLI below uses
    with Client(live_server.url, live_server.key) as client:
        client.create_dataset("recorded")
        first = client.push(
            tree, "recorded", state=state
        )  # records what it left: v1 and its two files
        assert first.version is not None
        # Someone else changes a file, keeping the version, the file count and the size.
        client.upload_file("recorded", "a.txt", b"AAAA")
        trusting = subprocess.run(
            [sys.executable, "-m", "quiver", "push", str(tree), "recorded", "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        command = [sys.executable, "-m", "quiver", "push", str(tree), "recorded", "--json"]
        checking = subprocess.run(
            [*command, "--check-remote"], env=env, capture_output=True, text=True, check=False
        )
        assert '"uploaded_files": 0' in trusting.stdout, trusting.stderr
        assert '"changed": [\n    "a.txt"\n  ]' in checking.stdout, checking.stderr
        assert client.read_bytes("recorded", "a.txt") == b"aaaa"
        # A change the counts show (another file) is seen without asking.
        client.upload_file("recorded", "c.txt", b"c")
        (tree / "b.txt").write_text("BBBB")
        mirrored = client.push(tree, "recorded", delete=True, state=state)
        assert (mirrored.changed, mirrored.deleted) == (["b.txt"], ["c.txt"])


def test_versions_and_stats_commands(live_server: LiveServer, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "t.csv").write_text("x,y\n1,a\n2,b\n3,b\n")
    quiver(live_server, "datasets", "create", "cmds", "--type", "tabular")
    assert quiver(live_server, "push", str(tree), "cmds", "-m", "one").returncode == 0
    (tree / "u.txt").write_text("u")
    quietly = quiver(live_server, "push", str(tree), "cmds", "--no-version", "--quiet")
    assert (quietly.returncode, quietly.stdout, quietly.stderr) == (0, "", "")
    made = quiver(live_server, "versions", "create", "cmds", "-m", "two")
    assert made.stdout.strip() == "Created v2 (2 files)"
    listed = quiver(live_server, "versions", "ls", "cmds")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["version", "v2", "v1"]
    diff = quiver(live_server, "versions", "diff", "cmds", "v1", "v2")
    assert diff.stdout.splitlines() == ["+ u.txt", "1 added, 0 removed, 0 changed, 0 renamed"]
    restored = quiver(live_server, "versions", "restore", "cmds", "v1")
    assert restored.stdout.strip() == "cmds's working set is v1 (1 files)"
    stats = quiver(live_server, "stats", "cmds@v1", "t.csv")
    assert stats.returncode == 0, stats.stderr
    rows = {line.split()[0]: line.split() for line in stats.stdout.splitlines()[1:-1]}
    assert rows["x"][:5] == ["x", "int64", "3", "0", "3"]
    assert rows["x"][5:8] == ["1", "3", "2"]  # min, max, mean
    assert stats.stdout.splitlines()[-1] == "3 rows, 0 duplicate rows"
    shown = quiver(live_server, "datasets", "show", "cmds", "--json")
    assert '"type": "TABULAR"' in shown.stdout
    removed = quiver(live_server, "datasets", "rm", "cmds")
    assert removed.stdout.strip() == "Deleted cmds"
    assert quiver(live_server, "datasets", "show", "cmds").returncode == 3


def test_pull_no_cache_writes_the_tree_and_leaves_the_cache_empty(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # A client home of its own: the module's server is shared, its default cache too.
    live_server = LiveServer(live_server.url, live_server.key, live_server.bytes_log, tmp_path)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha")
    (tree / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    assert quiver(live_server, "datasets", "create", "one-shot").returncode == 0
    assert quiver(live_server, "push", str(tree), "one-shot", "--quiet").returncode == 0
    blobs = live_server.home / "cache" / "blobs"

    done = quiver(live_server, "pull", "one-shot", str(tmp_path / "out"), "--no-cache", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["downloaded_files"] == 2
    assert tree_bytes(tmp_path / "out") == tree_bytes(tree)
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    # Without the cache a pull into the same folder still downloads nothing...
    again = quiver(live_server, "pull", "one-shot", str(tmp_path / "out"), "--no-cache", "--json")
    report = json.loads(again.stdout)
    assert (report["unchanged"], report["downloaded_files"]) == (2, 0)
    # ...and the default pull fills the cache, from which the next folder is copied.
    assert quiver(live_server, "pull", "one-shot", str(tmp_path / "b"), "--quiet").returncode == 0
    kept = BlobCache(blobs)
    assert all(kept.has(hashlib.sha256(data).hexdigest()) for data in tree_bytes(tree).values())
    kept.close()
    cached = quiver(live_server, "pull", "one-shot", str(tmp_path / "c"), "--json")
    assert json.loads(cached.stdout)["from_cache"] == 2
