"""The Shopify client's HTTP edge cases (respx): retries, throttling, auth, transfers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx

from bulkimg.shopify.client import (
    ResultUrlExpiredError,
    RetryPolicy,
    ShopifyAuthError,
    ShopifyClient,
    ShopifyEndpoint,
    ShopifyGraphQLError,
    ShopifyNetworkError,
    redact_url,
    throttle_wait,
)

SHOP = "https://bulkimg-test.myshopify.com"
URL = f"{SHOP}/admin/api/2026-10/graphql.json"
TOKEN = "shpat_canary_token_DO_NOT_LEAK"
SHOP_DATA = {"data": {"shop": {"name": "Test", "myshopifyDomain": "bulkimg-test.myshopify.com"}}}


def throttled(available: float, requested: float = 50, rate: float = 100) -> dict[str, Any]:
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": 1000,
                    "currentlyAvailable": available,
                    "restoreRate": rate,
                },
            }
        },
    }


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> ShopifyClient:
    return ShopifyClient(
        ShopifyEndpoint.from_shop("bulkimg-test"),
        TOKEN,
        retry=RetryPolicy(attempts=4, max_backoff=2.0),
        sleep=waits.append,
    )


@pytest.mark.parametrize(
    ("shop", "base"),
    [
        ("bulkimg-test", SHOP),
        ("bulkimg-test.myshopify.com", SHOP),
        ("https://bulkimg-test.myshopify.com/", SHOP),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
    ],
)
def test_shop_accepts_a_name_a_domain_or_a_url(shop: str, base: str) -> None:
    assert ShopifyEndpoint.from_shop(shop).base_url == base
    assert ShopifyEndpoint.from_shop(shop, "2026-10").graphql_url.endswith(
        "/admin/api/2026-10/graphql.json"
    )


@respx.mock
def test_throttled_waits_just_long_enough_from_extensions_cost(
    client: ShopifyClient, waits: list[float]
) -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=throttled(available=10, requested=50, rate=100)),
            httpx.Response(200, json=SHOP_DATA),
        ]
    )
    assert client.execute("shop")["shop"]["name"] == "Test"
    assert route.call_count == 2
    assert len(waits) == 1 and 0.4 <= waits[0] <= 0.4 + 0.25  # (50 - 10) / 100 s, plus jitter
    assert route.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN


def test_throttle_wait_without_cost_falls_back_to_backoff() -> None:
    assert throttle_wait(None) is None
    assert throttle_wait({"cost": {"requestedQueryCost": 10}}) is None
    assert throttle_wait(throttled(available=500)["extensions"]) == 0.0


@respx.mock
def test_http_429_honours_retry_after(client: ShopifyClient, waits: list[float]) -> None:
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1.5"}, text="slow down"),
            httpx.Response(200, json=SHOP_DATA),
        ]
    )
    client.execute("shop")
    assert 1.5 <= waits[0] <= 1.75


@respx.mock
def test_5xx_and_network_errors_are_retried_with_backoff(
    client: ShopifyClient, waits: list[float]
) -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.ReadTimeout("timed out"),
            httpx.Response(200, text="<html>not json</html>"),
            httpx.Response(200, json=SHOP_DATA),
        ]
    )
    client.execute("shop")
    assert route.call_count == 4
    assert len(waits) == 3 and all(0 <= w <= 2.0 for w in waits)


@respx.mock
def test_retries_stop_after_the_configured_attempts(client: ShopifyClient) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(503))
    with pytest.raises(Exception, match="HTTP 503"):
        client.execute("shop")
    assert route.call_count == 4


@respx.mock
def test_non_idempotent_request_is_not_repeated_after_it_may_have_run(
    client: ShopifyClient,
) -> None:
    route = respx.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    variables = {"mutation": "mutation { x }", "stagedUploadPath": "tmp/1"}
    with pytest.raises(ShopifyNetworkError) as info:
        client.execute("bulk_operation_run_mutation", variables, idempotent=False)
    assert info.value.sent is True
    assert route.call_count == 1


@respx.mock
def test_non_idempotent_request_is_repeated_when_it_surely_did_not_run(
    client: ShopifyClient,
) -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(200, json=throttled(available=0)),
            httpx.Response(
                200,
                json={
                    "data": {"bulkOperationRunMutation": {"bulkOperation": None, "userErrors": []}}
                },
            ),
        ]
    )
    variables = {"mutation": "mutation { x }", "stagedUploadPath": "tmp/1"}
    client.execute("bulk_operation_run_mutation", variables, idempotent=False)
    assert route.call_count == 3


@respx.mock
def test_bad_token_is_a_configuration_error_without_the_token(client: ShopifyClient) -> None:
    respx.post(URL).mock(return_value=httpx.Response(401, json={"errors": "[API] Invalid"}))
    with pytest.raises(ShopifyAuthError) as info:
        client.execute("shop")
    assert info.value.exit_code == 2
    assert TOKEN not in str(info.value)


@respx.mock
def test_graphql_errors_are_reported_not_retried(client: ShopifyClient) -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200, json={"errors": [{"message": "Field 'x' doesn't exist", "extensions": {}}]}
        )
    )
    with pytest.raises(ShopifyGraphQLError, match="doesn't exist"):
        client.execute("shop")
    assert route.call_count == 1


def test_missing_token_is_a_configuration_error() -> None:
    with pytest.raises(Exception, match="SHOPIFY_ACCESS_TOKEN"):
        ShopifyClient(ShopifyEndpoint.from_shop("x"), "")


@respx.mock
def test_staged_upload_sends_every_parameter_then_the_file_last(
    client: ShopifyClient, tmp_path: Path
) -> None:
    path = tmp_path / "productset.jsonl"
    path.write_bytes(b'{"input": {}}\n')
    route = respx.post("https://uploads.test/bucket").mock(
        side_effect=[httpx.Response(503), httpx.Response(201, text="<PostResponse/>")]
    )
    params = {"key": "tmp/1/bulk/abc/productset.jsonl", "policy": "p", "x-goog-signature": "s"}
    client.upload_staged("https://uploads.test/bucket", params, path)
    body = route.calls[-1].request.content
    order = [body.find(f'name="{name}"'.encode()) for name in (*params, "file")]
    assert all(o > 0 for o in order) and order == sorted(order)
    assert body.count(b'{"input": {}}') == 1


@respx.mock
def test_download_writes_the_whole_file_or_nothing(client: ShopifyClient, tmp_path: Path) -> None:
    dest = tmp_path / "results.jsonl"
    respx.get("https://results.test/ok").mock(
        return_value=httpx.Response(200, content=b'{"__lineNumber": 0}\n')
    )
    respx.get("https://results.test/expired").mock(return_value=httpx.Response(403))
    client.download("https://results.test/ok", dest)
    assert orjson.loads(dest.read_bytes()) == {"__lineNumber": 0}
    other = tmp_path / "other.jsonl"
    with pytest.raises(ResultUrlExpiredError):
        client.download("https://results.test/expired", other)
    assert not other.exists() and not list(tmp_path.glob(".*part"))


def test_redact_url_hides_signatures_and_tokens() -> None:
    url = (
        "https://b.s3.amazonaws.com/k.jpg?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1"
        "&X-Amz-Signature=abcdef&X-Amz-Security-Token=tok123&Signature=zzz"
    )
    redacted = redact_url(url)
    for secret in ("abcdef", "tok123", "AKIA", "zzz"):
        assert secret not in redacted
    assert redacted.startswith("https://b.s3.amazonaws.com/k.jpg?X-Amz-Algorithm=AWS4")


def test_an_unreachable_shop_is_named_in_the_error_at_once() -> None:
    import socket

    from bulkimg.config import load_settings
    from bulkimg.shopify.client import ShopifyUnreachableError, client_from_settings

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = load_settings(
        {"shopify_shop": f"http://127.0.0.1:{port}", "shopify_access_token": "t0ken"},
        env_file=None,
    )  # the default 8 attempts: the first refusal is final all the same
    with client_from_settings(settings) as client, pytest.raises(ShopifyUnreachableError) as caught:
        client.execute("shop")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "SHOPIFY_SHOP" in message and "\n" not in message
    assert "t0ken" not in message
    assert caught.value.exit_code == 2 and (client.calls, sum(client.retries.values())) == (1, 0)


@pytest.mark.fault_matrix(
    area="Shopify",
    fault="the shop's address refuses connections after it has answered the client once"
    " (restarted, a passing outage)",
    outcome="retried until the shop is back (not taken for a wrong address, which a refused"
    " first connection is: exit 2 at once); the request succeeds",
)
def test_a_refusal_after_the_shop_answered_once_is_retried(tmp_path: Path) -> None:
    from contextlib import ExitStack

    from bulkimg.demo.run import free_port
    from bulkimg.sandbox import SandboxConfig, SandboxShop, serve

    port = free_port()
    endpoint = ShopifyEndpoint.from_shop(f"http://127.0.0.1:{port}")
    naps: list[float] = []
    with (
        SandboxShop(tmp_path / "shop.sqlite", SandboxConfig(access_token=TOKEN)) as shop,
        ExitStack() as restarted,
    ):

        def back_after_a_nap(seconds: float) -> None:  # the shop is back while we wait
            naps.append(seconds)
            restarted.enter_context(serve(shop, port=port))

        retry = RetryPolicy(attempts=4, max_backoff=0.1)
        with ShopifyClient(endpoint, TOKEN, retry=retry, sleep=back_after_a_nap) as client:
            with serve(shop, port=port):
                assert client.execute("shop")["shop"]["name"]
            # nothing listens on the port now: the next request is refused, once
            assert client.execute("shop")["shop"]["name"]
        assert len(naps) == 1 and client.retries == {"ShopifyNetworkError": 1}
