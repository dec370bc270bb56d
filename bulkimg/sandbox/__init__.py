"""The sandbox shop: a local emulator of the part of Shopify's Admin GraphQL API bulkimg uses.

    with SandboxShop("shop.sqlite", SandboxConfig(media_processing_delay=0.1)) as shop:
        with serve(shop) as url:          # http://127.0.0.1:<port>; SHOPIFY_SHOP=<url>
            ...
        shop.faults.add(FaultRule("graphql", status=503, count=1))

``shop.wsgi_app`` serves the same API in-process (``httpx.WSGITransport``). The behaviour it
emulates, and where Shopify is silent the stricter choices it makes, are listed in
docs/sandbox.md.
"""

from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.faults import FaultRule
from bulkimg.sandbox.server import serve
from bulkimg.sandbox.shop import SandboxShop

__all__ = ["FaultRule", "SandboxConfig", "SandboxShop", "serve"]
