"""A refused operation answers every HTTP endpoint alike: its code's status and message."""

from __future__ import annotations

import pytest

from quiver.http.endpoint import BEARER_CHALLENGE, refusal_response
from quiver.resolvers.errors import ErrorCode, Problem, Refused


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.NOT_FOUND, 404),
        (ErrorCode.FORBIDDEN, 403),
        (ErrorCode.UNAUTHENTICATED, 401),
        (ErrorCode.INVALID, 400),
        (ErrorCode.CONFLICT, 409),
        (ErrorCode.TOO_LARGE, 413),
    ],
)
def test_each_error_code_has_its_status_and_names_itself_in_the_body(
    code: ErrorCode, status: int
) -> None:
    response = refusal_response(Refused.one(("path",), "Not here", code))

    assert response.status_code == status
    assert response.body == f"{code.value}: Not here".encode()


def test_every_error_code_maps_to_a_client_error() -> None:
    statuses = {refusal_response(Refused.one(None, "x", code)).status_code for code in ErrorCode}

    assert all(400 <= status < 500 for status in statuses)
    assert len(statuses) == len(ErrorCode)


def test_unauthenticated_carries_the_bearer_challenge() -> None:
    response = refusal_response(Refused.one(None, "Sign in", ErrorCode.UNAUTHENTICATED))

    assert response.headers["www-authenticate"] == BEARER_CHALLENGE["WWW-Authenticate"]


def test_several_problems_share_one_body_and_a_head_answer_has_none() -> None:
    refusal = Refused(
        [Problem(None, "First", ErrorCode.FORBIDDEN), Problem(None, "Second", ErrorCode.INVALID)]
    )

    assert refusal_response(refusal).body == b"FORBIDDEN: First; Second"
    headless = refusal_response(refusal, with_body=False)
    assert (headless.status_code, headless.body) == (403, b"")
