"""Fixtures of the job tests: a runner in the test's process, over the test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from quiver.config import Settings
from quiver.jobs.runner import Runner
from quiver.storage import storage_from_url


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[Runner]:
    storage = storage_from_url(settings.storage_url)
    try:
        yield Runner(settings, storage, concurrency=1)
    finally:
        await storage.close()
