"""GraphQL over HTTP: ``application/graphql-response+json`` when the client asks for it."""

from __future__ import annotations

from strawberry.types.execution import ExecutionResult, PreExecutionError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) of each part of an Accept header."""
    ranges = []
    for part in accept.split(","):
        media, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.strip().lower(), q))
    return ranges


def accepts_html(accept: str | None) -> bool:
    """Whether a browser asks: text/html named, and wanted at least as much as JSON."""
    if not accept:
        return False
    q_html = q_json = 0.0
    for media, q in _media_ranges(accept):
        if media == "text/html":
            q_html = max(q_html, q)
        elif media in (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON):
            q_json = max(q_json, q)
    return q_html > 0 and q_html >= q_json


def negotiate_response_media_type(accept: str | None) -> str:
    """graphql-response+json only when named and not out-weighed; else application/json."""
    if not accept:
        return APPLICATION_JSON
    q_graphql = q_json = 0.0
    for media, q in _media_ranges(accept):
        if media == GRAPHQL_RESPONSE_JSON:
            q_graphql = max(q_graphql, q)
        elif media in (APPLICATION_JSON, "application/*", "*/*"):
            q_json = max(q_json, q)
    if q_graphql > 0 and q_graphql >= q_json:
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the request failed before execution: parse, validation or variable coercion."""
    if isinstance(result, PreExecutionError):
        return True
    # Coercion failures leave data null with errors that have no path (field errors have one).
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)
