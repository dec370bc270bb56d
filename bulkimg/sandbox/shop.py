"""The sandbox shop: its state, its background workers and its WSGI app, in one object."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

from graphql import GraphQLSchema

from bulkimg.sandbox.app import SandboxApp
from bulkimg.sandbox.bulk import BulkOperationWorker, Response
from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.faults import FaultInjector
from bulkimg.sandbox.graphql_api import Executor
from bulkimg.sandbox.media import MediaWorker
from bulkimg.sandbox.signing import UrlSigner
from bulkimg.sandbox.store import Store
from bulkimg.sandbox.throttle import Throttle
from bulkimg.sandbox.views import Context, Services
from bulkimg.shopify.documents import ADMIN_API_VERSION, full_schema, subset_schema

GRAPHQL_PATH = f"/admin/api/{ADMIN_API_VERSION}/graphql.json"
_BULK_BASE_URL = "http://sandbox.invalid"  # bulk lines build no URL; nothing links here
_SCHEMA_FILES = (
    f"admin-{ADMIN_API_VERSION}.introspection.json.gz",
    f"admin-{ADMIN_API_VERSION}.graphql",
)


def shared_schema_dir() -> Path:
    """``$BULKIMG_SHARED_DIR/shopify``, else ``shared/shopify`` beside the repository."""
    default = Path(__file__).resolve().parents[3] / "shared"
    return Path(os.environ.get("BULKIMG_SHARED_DIR", default)) / "shopify"


def load_schema(config: SandboxConfig) -> GraphQLSchema:
    """The Admin schema the shop serves: the configured file, Shopify's full schema when
    present, else the subset shipped with bulkimg."""
    if config.schema_path is not None:
        return full_schema(config.schema_path)
    for name in _SCHEMA_FILES:
        path = shared_schema_dir() / name
        if path.is_file():
            return full_schema(path)
    return subset_schema()


class SandboxShop:
    """An emulated Shopify shop kept in ``state_path`` (a SQLite file; None: a temporary one).

    Use it as a context manager, or call :meth:`close`: that stops the bulk and media threads
    and leaves the state file consistent. ``wsgi_app`` serves the Admin API in-process (e.g.
    ``httpx.WSGITransport``); :func:`bulkimg.sandbox.serve` serves it over loopback HTTP.
    """

    graphql_path = GRAPHQL_PATH

    def __init__(
        self, state_path: Path | str | None = None, config: SandboxConfig | None = None
    ) -> None:
        self.config = config or SandboxConfig()
        self._closed = False
        self._temp = None
        if state_path is None:
            self._temp = tempfile.TemporaryDirectory(prefix="bulkimg-sandbox-")
            state_path = Path(self._temp.name) / "shop.sqlite"
        path = Path(state_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = load_schema(self.config)
        self.faults = FaultInjector(self.config.fault_seed)
        store = Store(path, self.config.result_url_lifetime)
        self.executor = Executor(
            self.schema,
            Throttle(self.config.throttle_bucket_size, self.config.throttle_restore_rate),
        )
        media = MediaWorker(store, self.config, self.faults)
        bulk = BulkOperationWorker(store, self.config, self.faults, self._run_line, self._run_query)
        signer = UrlSigner(store.secret("url-signing-key"))
        self.services = Services(self.config, store, signer, media, bulk)
        bulk.start()
        media.start()
        self.wsgi_app = SandboxApp(self)
        self.state_path = path

    def close(self) -> None:
        """Stop the workers (running bulk operations end FAILED) and close the state file."""
        if self._closed:
            return
        self._closed = True
        self.services.bulk.close()
        self.services.media.close()
        self.services.store.close()
        if self._temp is not None:
            self._temp.cleanup()

    def __enter__(self) -> SandboxShop:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run_line(self, mutation: str, variables: dict[str, object]) -> Response:
        ctx = Context(self.services, _BULK_BASE_URL, bulk_mutation=True)
        return self.executor.run(ctx, mutation, variables)

    def _run_query(self, query: str) -> Response:
        return self.executor.run(Context(self.services, _BULK_BASE_URL, bulk_query=True), query)
