from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from quiver.storage.sigv4 import QuerySigner

ENDPOINTS = [
    "http://127.0.0.1:8333/bucket",
    "https://bucket.s3.eu-west-3.amazonaws.com",
    "https://s3.example.com:443/b",
    "http://[::1]:9000/b",
]
KEYS = ["blobs/ab/abcdef", "a key/with ünïcode & ?#+=;,:@!'()*$", "~tilde/%25"]
PARAMS: list[dict[str, str | int]] = [
    {},
    {
        "response-content-disposition": (
            "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
        ),
        "response-content-type": "text/csv; charset=utf-8",
    },
    {"partNumber": 7, "uploadId": "a+b/c=="},
]
HEADERS: list[dict[str, str]] = [
    {},
    {
        "x-amz-checksum-sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
        "Content-Type": "a/b",
    },
    {"X-Amz-Meta-Note": "  two   spaces  ", "User-Agent": "not signed"},
]


def botocore_url(
    method: str,
    url: str,
    credentials: Credentials,
    region: str,
    expires: int,
    params: dict[str, str | int],
    headers: dict[str, str],
) -> str:
    if params:
        url += "?" + urlencode(params, quote_via=quote)
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    S3SigV4QueryAuth(credentials, "s3", region, expires=expires).add_auth(request)
    return str(request.url)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("headers", HEADERS)
@pytest.mark.parametrize("token", [None, "session/token+with=odd chars"])
def test_same_url_as_botocore(
    endpoint: str,
    key: str,
    params: dict[str, str | int],
    headers: dict[str, str],
    token: str | None,
) -> None:
    method = "PUT" if headers else "GET"
    region = "eu-west-3"
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    base = f"{endpoint}/{quote(key, safe='/~')}"
    expected = botocore_url(method, base, credentials, region, 3600, params, headers)
    # botocore reads the clock itself: sign at the instant its URL names.
    stamp = parse_qs(urlsplit(expected).query)["X-Amz-Date"][0]
    when = datetime.strptime(stamp + "+0000", "%Y%m%dT%H%M%SZ%z")
    signed = QuerySigner(region).presign(
        method,
        base,
        access_key="AKIDEXAMPLE",
        secret_key=credentials.secret_key,
        token=token,
        expires_in=3600,
        params=params,
        headers=headers,
        now=when,
    )
    assert signed == expected


def test_signing_key_is_per_day_and_secret() -> None:
    signer = QuerySigner("us-east-1")
    first = signer.signing_key("secret", "20260101")
    assert signer.signing_key("secret", "20260101") is first
    assert signer.signing_key("secret", "20260102") != first
    assert signer.signing_key("other", "20260101") != first


def test_a_url_signed_on_another_day_differs() -> None:
    signer = QuerySigner("us-east-1")

    def sign(now: datetime) -> str:
        return signer.presign(
            "GET", "http://h/b/k", access_key="AK", secret_key="SK", token=None,
            expires_in=60, now=now,
        )  # fmt: skip

    one = sign(datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC))
    two = sign(datetime(2026, 1, 2, 0, 0, 0, tzinfo=UTC))
    assert one.rsplit("=", 1)[1] != two.rsplit("=", 1)[1]
    assert "20260101%2Fus-east-1%2Fs3%2Faws4_request" in one
