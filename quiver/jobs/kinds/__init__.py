"""What each job kind needs to start, checks in its parameters, and does when it runs.

``validate`` runs in the request that starts the job: it refuses bad parameters with
INVALID on their path (``["input", "params", …]``) and returns the parameters as stored.
``run`` runs in a worker and returns the job's ``result``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from quiver.auth import Viewer
from quiver.config import Settings
from quiver.jobs.context import JobContext
from quiver.models import Dataset, JobKind, Role
from quiver.resolvers.errors import FieldPath, Refused
from quiver.storage import Storage

PARAMS: FieldPath = ("input", "params")


@dataclass(frozen=True)
class Start:
    """What ``validate`` may consult: who starts the job, on which dataset."""

    viewer: Viewer
    dataset: Dataset
    settings: Settings
    storage: Storage


Validate = Callable[[dict[str, Any], Start], Awaitable[dict[str, Any]]]
Run = Callable[[JobContext], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class Kind:
    needed: Role  # the role on the dataset that starting (and cancelling) the job needs
    validate: Validate
    run: Run


KINDS: dict[JobKind, Kind] = {}


def register(kind: JobKind, *, needed: Role, validate: Validate) -> Callable[[Run], Run]:
    def add(run: Run) -> Run:
        KINDS[kind] = Kind(needed, validate, run)
        return run

    return add


def param(name: str) -> FieldPath:
    return (*PARAMS, name)


def known_params(params: dict[str, Any], allowed: set[str]) -> None:
    """Refuse parameters the kind does not know (a typo must not be silently ignored)."""
    for name in sorted(set(params) - allowed):
        raise Refused.invalid(param(name), f"Unknown parameter {name!r}")


def string_param(
    params: dict[str, Any], name: str, *, required: bool = False, choices: set[str] | None = None
) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise Refused.invalid(param(name), f"{name} is required")
        return None
    if not isinstance(value, str):
        raise Refused.invalid(param(name), f"{name} must be a string")
    if choices is not None and value not in choices:
        raise Refused.invalid(param(name), f"{name} must be one of {', '.join(sorted(choices))}")
    return value


def bool_param(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise Refused.invalid(param(name), f"{name} must be true or false")
    return value


def _load_kinds() -> None:
    # Each module registers its kinds on import.
    from quiver.jobs.kinds import (  # noqa: F401
        analyze,
        convert,
        exports,
        imports,
        interchange,
        paths,
        verify,
    )


_load_kinds()
