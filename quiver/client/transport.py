"""What both clients do with an HTTP answer: GraphQL errors and refusals become QuiverError."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from quiver.client.errors import QuiverError, TransportError
from quiver.client.operations import Operation

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRIES = 8
USER_AGENT = "quiver-client/0.1"


def headers(api_key: str | None) -> dict[str, str]:
    found = {"User-Agent": USER_AGENT}
    if api_key:
        found["Authorization"] = f"Bearer {api_key}"
    return found


def body(operation: Operation[Any]) -> dict[str, Any]:
    return {"query": operation.query, "variables": operation.variables}


def interpret(response: httpx.Response, operation: Operation[T]) -> T:
    """The operation's result, or the refusal the server answered as an exception."""
    try:
        answer = response.json()
    except ValueError:
        raise_for_status(response)
        raise TransportError(f"{response.request.url} did not answer JSON") from None
    if not isinstance(answer, dict):
        raise TransportError(f"{response.request.url} did not answer a GraphQL response")
    errors = answer.get("errors")
    if errors:
        first = errors[0]
        code = (first.get("extensions") or {}).get("code") or "ERROR"
        raise QuiverError(str(first.get("message")), code=str(code))
    raise_for_status(response)
    return operation.parse(answer["data"])


CODE_LINE = re.compile(r"^([A-Z_]{3,}): (.*)", re.DOTALL)
STATUS_CODES = {
    400: "INVALID",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "TOO_LARGE",
    416: "INVALID",
    429: "RATE_LIMITED",
}


def raise_for_status(response: httpx.Response) -> None:
    """A 4xx/5xx as a QuiverError with the server's code (its body reads ``CODE: message``)."""
    if response.status_code < 400:
        return
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        text = ""
    raise error_for_status(response.status_code, text)


def error_for_status(status: int, text: str) -> QuiverError:
    """The QuiverError for an HTTP status ``status`` >= 400 answered with body ``text``."""
    text = text.strip()
    match = CODE_LINE.match(text)
    if match:
        return QuiverError(match.group(2), code=match.group(1))
    code = STATUS_CODES.get(status, "SERVER_ERROR")
    return QuiverError(text[:300] or f"HTTP {status}", code=code)


def retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """How long to wait before retrying: Retry-After when given, else exponential backoff."""
    if response is not None:
        value = response.headers.get("retry-after", "")
        if value.isdigit():
            return min(float(value), 120.0)
        if value:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                pass
            else:
                return max(0.0, min((when - datetime.now(UTC)).total_seconds(), 120.0))
    return float(min(0.25 * 2**attempt, 30.0))


def dataset_id_in(reference: str) -> str | None:
    """``reference`` when it is a Dataset's global ID (base64 of ``Dataset:<pk>``)."""
    try:
        raw = base64.b64decode(reference.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, _, pk = raw.partition(":")
    return reference if kind == "Dataset" and pk.isdigit() else None


def is_ours(base: str, url: str) -> bool:
    """Whether ``url`` (relative, or absolute) is on the server at ``base``."""
    if "://" not in url:
        return True
    return _base_origin(base) == _origin(url)


@functools.lru_cache(maxsize=8)
def _base_origin(base: str) -> tuple[str, str, int | None]:
    return _origin(base)  # a pull asks of every file, always with the same base


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    # urlsplit, not httpx.URL: a pull asks this of every file's URL, and it is 4x cheaper.
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)
