"""Jobs through the client and ``quiver jobs`` against a live server (its embedded runner
runs them): start, list, follow over the subscription, wait, cancel, retry, delete."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import LiveServer, run_in_pty
from typer.testing import CliRunner

from quiver.cli import app
from quiver.client import Client, QuiverError, tus


def quiver(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quiver", *args],
        env=server.env() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def versioned(client: Client, name: str) -> str:
    """A dataset with two files and a v1; v1's ID."""
    client.create_dataset(name)
    client.upload_file(name, "a.txt", b"alpha\n")
    client.upload_file(name, "b/c.txt", b"gamma\n" * 100)
    return client.create_version(name, "first").id


def failing_import(client: Client, name: str) -> str:
    """An IMPORT_ARCHIVE job of bytes that are no archive: it FAILS when it runs."""
    values = {"datasetId": client.dataset_id(name), "path": "bad.zip", "archive": "true"}
    body = b"not an archive at all"
    location = tus.create(
        client.request, length=len(body), metadata=tus.encode_metadata(values), body=body
    )
    upload_id = location.rstrip("/").rsplit("/", 1)[-1]
    return client.start_job("IMPORT_ARCHIVE", name, {"uploadId": upload_id}).id


def test_a_job_is_started_followed_to_its_end_and_found_again(client_env: LiveServer) -> None:
    with Client() as client:
        version_id = versioned(client, "exported")
        params = {"versionId": version_id, "format": "tar"}
        job = client.start_job("EXPORT_ARCHIVE", "exported", params, idempotency_key="k1")
        assert client.start_job("EXPORT_ARCHIVE", "exported", params, idempotency_key="k1").id == (
            job.id
        )

        states = list(client.follow_job(job.id))
        seqs = [state.seq for state in states]
        assert seqs == sorted(set(seqs))
        assert states[-1].status == "SUCCEEDED"
        assert states[-1].result["url"]
        # From the last state seen, nothing is repeated: only the end, read once more.
        assert list(client.follow_job(job.id, after_seq=states[-1].seq)) == []
        assert job.wait(timeout=30).status == "SUCCEEDED"

        listed = list(client.jobs(dataset="exported", kind=["EXPORT_ARCHIVE"]))
        assert [found.id for found in listed] == [job.id]
        assert list(client.jobs(dataset="exported", status=["FAILED"])) == []
        client.delete_job(job.id)
        with pytest.raises(QuiverError) as gone:
            client.job(job.id)
        assert gone.value.code == "NOT_FOUND"


def test_a_failed_job_is_retried_and_an_unknown_one_is_not_found(client_env: LiveServer) -> None:
    with Client() as client:
        client.create_dataset("imports")
        job_id = failing_import(client, "imports")
        failed = client.wait_job(job_id, timeout=60)
        assert failed.status == "FAILED"
        assert failed.error
        again = client.retry_job(job_id)
        assert again.status in ("PENDING", "RUNNING", "FAILED")
        assert (again.wait(timeout=60).status, again.refresh().attempt) == ("FAILED", 2)
        with pytest.raises(QuiverError) as refused:
            client.cancel_job(job_id)  # it has ended
        assert refused.value.code in ("INVALID", "CONFLICT")
        with pytest.raises(QuiverError) as unknown:
            list(client.follow_job("Sm9iOjk5OTk5"))  # Job:99999
        assert unknown.value.code == "NOT_FOUND"


def test_quiver_jobs_lists_shows_follows_and_exits_non_zero_on_failure(
    client_env: LiveServer,
) -> None:
    with Client() as client:
        version_id = versioned(client, "cli-jobs")
        done = client.start_job("EXPORT_ARCHIVE", "cli-jobs", {"versionId": version_id})
        failed = failing_import(client, "cli-jobs")

    followed = quiver(client_env, "jobs", "follow", done.id)
    assert followed.returncode == 0, followed.stderr
    assert "SUCCEEDED" in followed.stdout
    # A pipe gets plain lines, one per state, never a bar's control codes.
    assert "SUCCEEDED 100%" in followed.stderr
    assert "\x1b[" not in followed.stderr

    # A terminal gets rich's bar instead.
    command = [sys.executable, "-m", "quiver", "jobs", "follow", done.id]
    screen = run_in_pty(command, client_env.env() | {"COLUMNS": "120"})
    assert "━" in screen
    assert "EXPORT_ARCHIVE SUCCEEDED" in screen

    failing = quiver(client_env, "jobs", "follow", failed)
    assert failing.returncode == 8, failing.stderr
    assert "FAILED" in failing.stdout

    # The rest in this process (typer's runner): the same commands, without a start-up each.
    cli = CliRunner()
    listed = cli.invoke(app, ["jobs", "ls", "--dataset", "cli-jobs", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {job["id"]: job["status"] for job in json.loads(listed.stdout)} == {
        done.id: "SUCCEEDED",
        failed: "FAILED",
    }
    only = cli.invoke(app, ["jobs", "ls", "--dataset", "cli-jobs", "--status", "failed"])
    assert failed in only.stdout
    assert done.id not in only.stdout

    shown = cli.invoke(app, ["jobs", "show", done.id, "--json"])
    assert json.loads(shown.stdout)["kind"] == "EXPORT_ARCHIVE"
    as_table = cli.invoke(app, ["jobs", "show", done.id])
    rows = [line.split() for line in as_table.stdout.splitlines()]
    fields = {row[0]: row[1:] for row in rows if row}
    assert (fields["kind"], fields["status"]) == (["EXPORT_ARCHIVE"], ["SUCCEEDED"])
    cancelled = cli.invoke(app, ["jobs", "cancel", done.id])
    assert cancelled.exit_code != 0
    assert cancelled.stderr.startswith("error: ")
    assert cli.invoke(app, ["jobs", "show", "Sm9iOjk5OTk5"]).exit_code == 3


def test_quiver_jobs_start_queues_a_job_follows_it_and_refuses_bad_parameters(
    client_env: LiveServer,
) -> None:
    with Client() as client:
        client.create_dataset("cli-start", type="TABULAR")
        client.upload_file("cli-start", "t.csv", b"a,b\n1,2\n3,4\n5,6\n")
        version_id = client.create_version("cli-start", "first").id
        client.create_dataset("cli-start-bad")
        upload_id = failing_import(client, "cli-start-bad")
        bad_upload = client.job(upload_id).params["uploadId"]

    # name@vN fills in versionId; --follow reports the end and exits 0 on success.
    analysed = quiver(
        client_env, "jobs", "start", "analyze", "cli-start@v1", "--param", "path=t.csv", "--follow"
    )
    assert analysed.returncode == 0, analysed.stderr
    assert "ANALYZE" in analysed.stdout
    assert "SUCCEEDED 100%" in analysed.stdout
    assert "SUCCEEDED 100%" in analysed.stderr  # a line per change, in a pipe

    cli = CliRunner()
    # --quiet prints the ID alone, for scripts; the same idempotency key is the same job.
    args = ["jobs", "start", "EXPORT_ARCHIVE", "cli-start", "-p", "format=tar", "--quiet"]
    args += ["--params", json.dumps({"versionId": version_id}), "--idempotency-key", "same"]
    started = [cli.invoke(app, args) for _ in range(2)]
    assert [result.exit_code for result in started] == [0, 0], started[0].output
    job_id = started[0].stdout.strip()
    assert started[1].stdout.strip() == job_id
    with Client() as client:
        job = client.wait_job(job_id, timeout=60)
    assert (job.kind, job.status, job.params["format"]) == ("EXPORT_ARCHIVE", "SUCCEEDED", "tar")
    assert job.params["versionId"] == version_id

    # --json --follow prints one JSON document: the job as it ended.
    followed = cli.invoke(
        app,
        ["jobs", "start", "ANALYZE", "cli-start@v1", "-p", "path=t.csv", "--follow", "--json"],
    )
    assert followed.exit_code == 0, followed.output
    assert json.loads(followed.stdout)["status"] == "SUCCEEDED"

    # A job that fails: --follow exits 8, as `jobs follow` does.
    failing = cli.invoke(
        app, ["jobs", "start", "IMPORT_ARCHIVE", "cli-start-bad", "-p", f"uploadId={bad_upload}",
              "--follow", "-q"],
    )  # fmt: skip
    assert failing.exit_code == 8, failing.output

    # Bad input: one line with its code and exit 2 (or 3: not found), never a traceback.
    for args in (
        ["-p", "no-equals-sign"],
        ["--params", "[1, 2]"],
        ["--params", "{not json"],
    ):
        refused = cli.invoke(app, ["jobs", "start", "ANALYZE", "cli-start", *args])
        assert refused.exit_code == 2, refused.output
        assert refused.stderr.startswith("error: INVALID: --param"), refused.stderr
        assert refused.stderr.count("\n") == 1
    unknown_kind = cli.invoke(app, ["jobs", "start", "NO_SUCH_KIND", "cli-start"])
    assert unknown_kind.exit_code == 2, unknown_kind.output
    assert unknown_kind.stderr.startswith("error: INVALID")
    no_version = cli.invoke(app, ["jobs", "start", "ANALYZE", "cli-start@v9"])
    assert no_version.exit_code == 3, no_version.output
    missing_path = cli.invoke(app, ["jobs", "start", "ANALYZE", "cli-start"])
    assert missing_path.exit_code == 2, missing_path.output
    assert missing_path.stderr.startswith("error: INVALID")
