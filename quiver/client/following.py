"""Following a job's progress over the ``jobProgress`` subscription (GraphQL over SSE, so
httpx is all it needs), reconnecting with ``afterSeq`` after a dropped or quiet connection.
``Following`` decides (how long to read, when to reconnect, when to give up, what the end is);
the sync and the async loop below only send and wait."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx

from quiver.client.errors import QuiverError
from quiver.client.jobs import SUBSCRIPTION, Job
from quiver.client.transport import raise_for_status, retry_delay
from quiver.client.types import Json

if TYPE_CHECKING:
    from quiver.client.aio import AsyncClient
    from quiver.client.client import Client

# A stream quiet this long is checked again by reconnecting (the server sends every status
# change at once, so a long silence is a job that is working, or a connection that is gone).
QUIET_SECONDS = 30.0
MAX_RECONNECTS = 8
SSE_HEADERS = {"Accept": "text/event-stream"}


class Following:
    """One job followed from ``after_seq`` until it ends, or until ``deadline`` (a
    ``time.monotonic()``) has passed."""

    def __init__(self, job_id: str, after_seq: int | None, deadline: float | None) -> None:
        self.job_id = job_id
        self.after_seq = after_seq
        self.deadline = deadline
        self.failures = 0

    def request(self) -> Json:
        return {"query": SUBSCRIPTION, "variables": {"id": self.job_id, "afterSeq": self.after_seq}}

    def timeout(self) -> httpx.Timeout:
        read_for = QUIET_SECONDS
        if self.deadline is not None:
            read_for = min(read_for, self.deadline - time.monotonic())
        return httpx.Timeout(10.0, read=max(read_for, 0.1))

    def opened(self, response: httpx.Response) -> None:
        """Refuse an answer that is no event stream (after its body has been read)."""
        if response.status_code >= 400 or not self.streams(response):
            raise_for_status(response)
            raise QuiverError("the server does not serve GraphQL over SSE", code="INVALID")

    @staticmethod
    def streams(response: httpx.Response) -> bool:
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        return response.status_code < 400 and streaming

    def seen(self, state: Job) -> bool:
        """Note a state received; whether it is the last."""
        self.failures = 0
        self.after_seq = state.seq
        return state.ended

    def quiet(self) -> None:
        """The stream said nothing for a while: look again, unless time is up."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise QuiverError(f"job {self.job_id} has not ended in time", code="TIMEOUT")

    def lost(self, error: httpx.TransportError) -> float:
        """The connection failed: how long to wait before the next, unless it failed too often."""
        self.failures += 1
        if self.failures > MAX_RECONNECTS:
            raise QuiverError(
                f"lost the connection following job {self.job_id}: {error}", code="UNAVAILABLE"
            ) from error
        return retry_delay(None, self.failures)

    def closed(self, now: Job) -> tuple[bool, Job | None]:
        """The stream completed without an end state: the job had ended at or before
        ``after_seq``, or the server went away mid-stream; the job itself (``now``) says
        which. Whether following is over, and the state still to report."""
        if not now.ended:
            return False, None
        return True, now if self.after_seq is None or now.seq > self.after_seq else None


class EventReader:
    """The ``next`` events of a GraphQL-over-SSE stream, a line at a time."""

    def __init__(self) -> None:
        self.event = ""
        self.complete = False

    def feed(self, line: str) -> Json | None:
        """The job in a ``next`` event's data line; None for any other line."""
        if line.startswith("event:"):
            self.event = line.removeprefix("event:").strip()
            self.complete = self.event == "complete"
        elif line.startswith("data:") and self.event == "next":
            return _state(json.loads(line.removeprefix("data:")))
        return None


def _state(message: Json) -> Json:
    errors = message.get("errors")
    if errors:
        first = errors[0]
        code = (first.get("extensions") or {}).get("code") or "ERROR"
        raise QuiverError(str(first.get("message")), code=str(code))
    state: Json = message["data"]["jobProgress"]
    return state


def follow(
    client: Client, job_id: str, *, after_seq: int | None = None, deadline: float | None = None
) -> Iterator[Job]:
    """The job's states as they change (after ``after_seq``), until it ends."""
    following = Following(job_id, after_seq, deadline)
    while True:
        try:
            for state in _stream(client, following):
                yield state
                if following.seen(state):
                    return
        except httpx.TimeoutException:
            following.quiet()
            continue
        except httpx.TransportError as error:
            time.sleep(following.lost(error))
            continue
        over, last = following.closed(client.job(job_id))
        if last is not None:
            yield last
        if over:
            return


def _stream(client: Client, following: Following) -> Iterator[Job]:
    """One GraphQL-over-SSE request (distinct connections mode): each ``next`` event's job."""
    with client.http.stream(
        "POST", "/graphql", json=following.request(), headers=SSE_HEADERS,
        timeout=following.timeout(),
    ) as response:  # fmt: skip
        if not following.streams(response):
            response.read()
            following.opened(response)
        reader = EventReader()
        for line in response.iter_lines():
            if (found := reader.feed(line)) is not None:
                yield Job.from_json(found, client)
            if reader.complete:
                return


async def follow_async(
    client: AsyncClient,
    job_id: str,
    *,
    after_seq: int | None = None,
    deadline: float | None = None,
) -> AsyncIterator[Job]:
    """As ``follow``, for the async client."""
    import anyio

    following = Following(job_id, after_seq, deadline)
    while True:
        try:
            async for state in _stream_async(client, following):
                yield state
                if following.seen(state):
                    return
        except httpx.TimeoutException:
            following.quiet()
            continue
        except httpx.TransportError as error:
            await anyio.sleep(following.lost(error))
            continue
        over, last = following.closed(await client.job(job_id))
        if last is not None:
            yield last
        if over:
            return


async def _stream_async(client: AsyncClient, following: Following) -> AsyncIterator[Job]:
    async with client.http.stream(
        "POST", "/graphql", json=following.request(), headers=SSE_HEADERS,
        timeout=following.timeout(),
    ) as response:  # fmt: skip
        if not following.streams(response):
            await response.aread()
            following.opened(response)
        reader = EventReader()
        async for line in response.aiter_lines():
            if (found := reader.feed(line)) is not None:
                yield Job.from_json(found)
            if reader.complete:
                return
