"""Unit tests of s3/linkcheck.py: the one presigned URL a run checks before it reports success.

The GETs go over the httpx sender to respx routes (HTTP corner cases: statuses and resets on
demand); the end-to-end checks against moto, SeaweedFS and S3's refusals are in test_s3_access
and test_seaweedfs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from bulkimg.errors import ConfigError, S3Error
from bulkimg.s3.client import LIGHT_CALL_EVENT, LIGHT_SEND_EVENT
from bulkimg.s3.linkcheck import ATTEMPTS, check_link
from bulkimg.s3.options import S3Options

URL = (
    "https://bucket.s3.amazonaws.com/sorted-media/82/77/49/827749-1a-1.jpg"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261204%2Fus-east-1"
    "%2Fs3%2Faws4_request&X-Amz-Signature=0123456789abcdef"
)
KEY = "sorted-media/82/77/49/827749-1a-1.jpg"
OPTIONS = S3Options(
    bucket="bucket", prefix="sorted-media/", endpoint=None, list_strategy="auto", workers=2,
    max_attempts=3, get_client="httpx", probe_initial_bytes=65536, probe_max_bytes=1 << 22,
)  # fmt: skip


class Events:
    """What the run's request counter hears (botocore's event names)."""

    def __init__(self) -> None:
        self.emitted: list[str] = []

    def emit(self, name: str, **_: Any) -> None:
        self.emitted.append(name)


@pytest.fixture
def routes() -> Iterator[respx.Router]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bulkimg.s3.linkcheck._sleep", lambda seconds: None)


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, content=f"<Error><Code>{code}</Code></Error>".encode())


def test_a_working_link_is_one_ranged_get_of_one_byte(routes: respx.Router) -> None:
    route = routes.get(URL).mock(return_value=httpx.Response(206, content=b"\xff"))
    checked = check_link(OPTIONS, URL, KEY, Events())
    assert (checked.s3_key, checked.status) == (KEY, 206)
    assert route.call_count == 1 and route.calls[0].request.headers["Range"] == "bytes=0-0"


def test_a_server_error_is_tried_again_and_a_later_answer_counts(routes: respx.Router) -> None:
    route = routes.get(URL).mock(side_effect=[error(503, "SlowDown"), httpx.Response(206)])
    assert check_link(OPTIONS, URL, KEY, Events()).status == 206
    assert route.call_count == 2


def test_server_errors_every_time_end_as_one_remote_error(routes: respx.Router) -> None:
    route = routes.get(URL).mock(return_value=error(500, "InternalError"))
    with pytest.raises(S3Error, match="HTTP 500 InternalError") as raised:
        check_link(OPTIONS, URL, KEY, Events())
    assert route.call_count == ATTEMPTS and not isinstance(raised.value, ConfigError)


def test_a_refused_signature_is_a_user_error_naming_no_secret(routes: respx.Router) -> None:
    route = routes.get(URL).mock(return_value=error(403, "SignatureDoesNotMatch"))
    with pytest.raises(ConfigError, match="HTTP 403 SignatureDoesNotMatch") as raised:
        check_link(OPTIONS, URL, KEY, Events())
    assert route.call_count == 1  # a refusal is not tried again
    assert "0123456789abcdef" not in str(raised.value)


@pytest.mark.parametrize("status", [404, 412, 416])
def test_an_object_changed_since_the_listing_is_not_the_links_fault(
    routes: respx.Router, status: int
) -> None:
    routes.get(URL).mock(return_value=error(status, "NoSuchKey"))
    assert check_link(OPTIONS, URL, KEY, Events()).status == status


def test_a_reset_connection_is_tried_again(routes: respx.Router) -> None:
    route = routes.get(URL).mock(
        side_effect=[httpx.ConnectError("reset"), httpx.Response(206, content=b"\xff")]
    )
    assert check_link(OPTIONS, URL, KEY, Events()).status == 206
    assert route.call_count == 2


def test_the_check_is_counted_as_one_call_and_each_attempt(routes: respx.Router) -> None:
    routes.get(URL).mock(side_effect=[error(503, "SlowDown"), httpx.Response(206)])
    events = Events()
    check_link(OPTIONS, URL, KEY, events)
    assert events.emitted.count(f"{LIGHT_CALL_EVENT}.LinkCheck") == 1
    assert events.emitted.count(f"{LIGHT_SEND_EVENT}.LinkCheck") == 2
