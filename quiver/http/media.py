"""GraphQL over HTTP: ``application/graphql-response+json`` when the client asks for it."""

from __future__ import annotations

from strawberry.types.execution import ExecutionResult, PreExecutionError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"


def negotiate_response_media_type(accept: str | None) -> str:
    """graphql-response+json only when named and not out-weighed; else application/json."""
    if not accept:
        return APPLICATION_JSON
    q_graphql = q_json = 0.0
    for part in accept.split(","):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
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
