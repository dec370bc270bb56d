"""Talk to Shopify's Admin GraphQL API (or the sandbox shop): gql over an httpx transport.

The transport is an httpx client, so the same code reaches the real shop, the sandbox over
loopback, or the sandbox in-process (`httpx.WSGITransport`). Documents are validated locally
against the Admin schema subset before they are sent.

Retries (tenacity) cover network errors, HTTP 5xx and 429 and GraphQL `THROTTLED` — the last
waits just long enough for the leaky bucket to refill, from `extensions.cost`. A request that
is not safe to repeat (`idempotent=False`) is retried only when it surely did not run. A
connection refused before the shop ever answered this client is not retried: the address is
wrong (ShopifyUnreachableError, one line naming it, exit 2).
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from gql import Client, GraphQLRequest
from gql.transport import Transport
from gql.transport.exceptions import TransportQueryError
from graphql import ExecutionResult
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from bulkimg.config import Settings
from bulkimg.errors import ConfigError, RemoteError
from bulkimg.outputs import create_private
from bulkimg.redact import redact_url
from bulkimg.shopify.documents import ADMIN_API_VERSION, load_document, subset_schema
from bulkimg.shopify.operation import BulkOperationNode, ShopIdentity


class ShopifyError(RemoteError):
    """A Shopify request failed."""

    retryable = False
    wait_seconds: float | None = None


class ShopifyAuthError(ShopifyError, ConfigError):
    """401/403: the token is wrong or lacks a scope (a configuration problem)."""

    exit_code = 2


class ShopifyNetworkError(ShopifyError):
    """The request did not complete (connection, timeout); it may or may not have run."""

    retryable = True

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class ShopifyUnreachableError(ShopifyNetworkError, ConfigError):
    """The shop's address refused the very first connection of a client: nothing listens there,
    so SHOPIFY_SHOP is wrong (a configuration problem, exit 2), not a passing outage. Not
    retried; a refusal after the shop has once answered is a ShopifyNetworkError (retried)."""

    retryable = False
    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class ShopifyServerError(ShopifyError):
    """HTTP 5xx or an INTERNAL_SERVER_ERROR: transient on Shopify's side."""

    retryable = True


class ShopifyThrottledError(ShopifyError):
    """HTTP 429 or GraphQL THROTTLED: the request did not run; wait and send it again."""

    retryable = True

    def __init__(self, message: str, wait_seconds: float | None) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class ShopifyGraphQLError(ShopifyError):
    """The API answered with top-level GraphQL errors (invalid document, access denied…)."""

    def __init__(self, message: str, errors: list[Any]) -> None:
        super().__init__(message)
        self.errors = errors


class BulkOperationFailedError(ShopifyError):
    """A bulk operation itself failed, was cancelled or refused (exit code 3, as documented)."""

    exit_code = 3


class ResultUrlExpiredError(ShopifyError):
    """A signed result URL no longer works; query the operation again for a fresh one."""


@dataclass(frozen=True, slots=True)
class ShopifyEndpoint:
    """Where the Admin API is: `name.myshopify.com`, or a full URL such as the sandbox's."""

    base_url: str
    api_version: str = ADMIN_API_VERSION

    @classmethod
    def from_shop(cls, shop: str, api_version: str = ADMIN_API_VERSION) -> ShopifyEndpoint:
        shop = shop.strip().rstrip("/")
        if not shop:
            raise ConfigError("missing setting SHOPIFY_SHOP")
        if not re.match(r"^https?://", shop):
            host = shop if "." in shop else f"{shop}.myshopify.com"
            shop = f"https://{host}"
        return cls(shop, api_version)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}/graphql.json"


def throttle_wait(extensions: Mapping[str, Any] | None) -> float | None:
    """Seconds until the bucket holds the requested cost, from `extensions.cost`."""
    cost = (extensions or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return None
    if rate <= 0:
        return None
    return max(0.0, (requested - available) / rate)


def _error_codes(errors: Any) -> set[str]:
    if not isinstance(errors, list):
        return set()
    return {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)}


class ShopifyTransport(Transport):
    """gql transport over an httpx client, mapping HTTP outcomes to ShopifyError kinds."""

    def __init__(self, http: httpx.Client, endpoint: ShopifyEndpoint, token: str) -> None:
        self.http = http
        self.endpoint = endpoint
        self._headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        self.answered = False  # the shop has answered a request of this client once

    def execute(self, request: GraphQLRequest, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            response = self.http.post(
                self.endpoint.graphql_url,
                content=orjson.dumps(request.payload),
                headers=self._headers,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            where = self.endpoint.base_url
            if not self.answered and _refused(exc):
                raise ShopifyUnreachableError(
                    f"cannot reach Shopify at {where} (SHOPIFY_SHOP): connection refused, nothing"
                    " listens there: check the address"
                ) from None
            raise ShopifyNetworkError(
                f"cannot reach Shopify at {where} (SHOPIFY_SHOP): {exc}", sent=False
            ) from None
        except httpx.TransportError as exc:
            where = self.endpoint.base_url
            raise ShopifyNetworkError(
                f"Shopify request to {where} failed: {exc!r}", sent=True
            ) from None
        self.answered = True
        body = _check_response(response)
        errors = body.get("errors")
        if "THROTTLED" in _error_codes(errors):
            wait = throttle_wait(body.get("extensions"))
            raise ShopifyThrottledError("Shopify throttled the request (THROTTLED)", wait)
        if "INTERNAL_SERVER_ERROR" in _error_codes(errors):
            raise ShopifyServerError(f"Shopify internal error: {_first_message(errors)}")
        if errors is not None and not isinstance(errors, list):
            raise ShopifyGraphQLError(f"Shopify error: {errors}", [errors])
        return ExecutionResult(
            data=body.get("data"), errors=errors, extensions=body.get("extensions")
        )


def _refused(exc: BaseException) -> bool:
    """Whether a connection error was the peer refusing the connection (nothing listens)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _check_response(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status in (401, 403):
        raise ShopifyAuthError(
            f"Shopify refused the access token (HTTP {status}): check SHOPIFY_ACCESS_TOKEN"
        )
    if status == 429:
        raise ShopifyThrottledError("Shopify answered HTTP 429", _retry_after(response))
    if status >= 500:
        raise ShopifyServerError(f"Shopify answered HTTP {status}")
    if status >= 400:
        raise ShopifyError(f"Shopify answered HTTP {status}: {response.text[:200]}")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ShopifyServerError(f"Shopify answered HTTP {status} without JSON") from None
    if not isinstance(body, dict):
        raise ShopifyServerError("Shopify answered with an unexpected JSON document")
    return body


_EXPIRED_URL_STATUS = frozenset({400, 401, 403, 404, 410})


def _raise_for_transfer(
    response: httpx.Response, what: str, expired: frozenset[int] = frozenset()
) -> None:
    """Map the status of a file transfer (staged upload, result download) to an error."""
    status = response.status_code
    if status in expired:
        raise ResultUrlExpiredError(f"{what}: signed URL refused (HTTP {status})")
    if status == 429:
        raise ShopifyThrottledError(f"{what}: HTTP 429", _retry_after(response))
    if status >= 500:
        raise ShopifyServerError(f"{what}: HTTP {status}")
    if status >= 400:
        response.read()
        raise ShopifyError(f"{what} refused: HTTP {status} {redact_url(response.text[:200])}")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _first_message(errors: Any) -> str:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message", ""))
    return str(errors)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts, and the backoff cap between them."""

    attempts: int = 8
    max_backoff: float = 30.0
    initial_backoff: float = 0.5

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "wait_seconds", None)
        if hinted is not None:
            return min(self.max_backoff, float(hinted)) + random.uniform(0, 0.25)
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)


def _retryable(idempotent: bool) -> Any:
    def check(exc: BaseException) -> bool:
        if not isinstance(exc, ShopifyError) or not exc.retryable:
            return False
        if idempotent:
            return True
        # Repeat a non-idempotent request only when it cannot have run.
        if isinstance(exc, ShopifyNetworkError):
            return not exc.sent
        return isinstance(exc, ShopifyThrottledError)

    return retry_if_exception(check)


class ShopifyClient:
    """Runs our GraphQL documents by name; uploads staged files; downloads result files."""

    def __init__(
        self,
        endpoint: ShopifyEndpoint,
        token: str,
        *,
        http: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ConfigError("missing setting SHOPIFY_ACCESS_TOKEN (set it in the environment)")
        self.endpoint = endpoint
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=True)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.calls = 0
        self.retries: Counter[str] = Counter()  # retried failures by kind, for reports
        self._transport = ShopifyTransport(self.http, endpoint, token)
        self._gql = Client(transport=self._transport, schema=subset_schema())
        self._session = self._gql.connect_sync()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._gql.close_sync()  # type: ignore[no-untyped-call]
        self.http.close()

    def __enter__(self) -> ShopifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reach(self) -> None:
        """Make sure the shop answers before a command writes anything: unless it already has,
        one `shop` query, which fails at once (ShopifyUnreachableError, exit 2) when nothing
        listens at the address, and on a refused token (ShopifyAuthError)."""
        if not self._transport.answered:
            self.execute("shop")

    def _retrying(self, idempotent: bool = True) -> Retrying:
        return Retrying(
            retry=_retryable(idempotent),
            wait=self.retry.wait,
            stop=stop_after_attempt(self.retry.attempts),
            sleep=self.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.retries[type(exc).__name__] += 1

    def execute(
        self, document: str, variables: Mapping[str, Any] | None = None, *, idempotent: bool = True
    ) -> dict[str, Any]:
        """Run `graphql/<document>.graphql`; returns its `data`."""
        request = GraphQLRequest(load_document(document), variable_values=dict(variables or {}))
        for attempt in self._retrying(idempotent):
            with attempt:
                self.calls += 1
                try:
                    result = self._session.execute(request)
                except TransportQueryError as exc:
                    raise ShopifyGraphQLError(
                        f"{document}: {_first_message(exc.errors)}", list(exc.errors or [])
                    ) from None
                return dict(result)
        raise AssertionError("unreachable")  # pragma: no cover

    def shop(self) -> ShopIdentity:
        """The shop's name and myshopify domain (graphql/shop.graphql)."""
        return ShopIdentity.model_validate(self.execute("shop")["shop"])

    def bulk_operation(self, operation_id: str) -> BulkOperationNode | None:
        """One bulk operation as the shop describes it now (None: the shop has no such one)."""
        data = self.execute("bulk_operation", {"id": operation_id})
        return BulkOperationNode.of(data["bulkOperation"])

    def bulk_operations(self, query: str) -> list[BulkOperationNode]:
        """The shop's bulk operations (any app's) matching a search query, e.g. `status:running`."""
        data = self.execute("bulk_operations", {"query": query})
        return [BulkOperationNode.model_validate(n) for n in data["bulkOperations"]["nodes"]]

    def cancel_bulk_operation(self, operation_id: str) -> None:
        """Ask the shop to stop a bulk operation (it ends CANCELED once it has stopped)."""
        self.execute("bulk_operation_cancel", {"id": operation_id})

    def upload_staged(self, url: str, parameters: Mapping[str, str], path: Path) -> None:
        """multipart/form-data POST of every parameter, then the file (it must come last)."""
        for attempt in self._retrying():
            with attempt:
                self.calls += 1
                with path.open("rb") as handle:
                    try:
                        response = self.http.post(
                            url,
                            data=dict(parameters),
                            files={"file": (path.name, handle, "text/jsonl")},
                        )
                    except httpx.TransportError as exc:
                        message = f"staged upload failed: {exc!r}"
                        raise ShopifyNetworkError(message, sent=True) from None
                _raise_for_transfer(response, "staged upload")

    def download(self, url: str, dest: Path) -> None:
        """Stream a result file to `dest` (written whole or not at all)."""
        temp = dest.with_name(f".{dest.name}.part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            for attempt in self._retrying():
                with attempt:
                    self.calls += 1
                    self._download_once(url, temp)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        temp.replace(dest)

    def _download_once(self, url: str, temp: Path) -> None:
        try:
            with self.http.stream("GET", url) as response:
                _raise_for_transfer(response, "download", expired=_EXPIRED_URL_STATUS)
                with create_private(temp) as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise ShopifyNetworkError(f"download failed: {exc!r}", sent=True) from None


def client_from_settings(settings: Settings, http: httpx.Client | None = None) -> ShopifyClient:
    """A client for SHOPIFY_SHOP with SHOPIFY_ACCESS_TOKEN (from the environment only)."""
    settings.require("shopify_shop", "shopify_access_token")
    endpoint = ShopifyEndpoint.from_shop(settings.shopify_shop or "", settings.shopify_api_version)
    token = (
        settings.shopify_access_token.get_secret_value() if settings.shopify_access_token else ""
    )
    retry = RetryPolicy(attempts=settings.shopify_max_attempts)
    return ShopifyClient(endpoint, token, http=http, retry=retry, timeout=settings.shopify_timeout)
