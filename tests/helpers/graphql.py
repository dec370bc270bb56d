"""A productSet line as bulkimg writes it, for the tests that validate documents and lines
against Shopify's schema."""

from __future__ import annotations

from typing import Any

SAMPLE_PRODUCT_SET_VARIABLES: dict[str, Any] = {
    "identifier": {"handle": "lgd-101792"},
    "input": {
        "handle": "lgd-101792",
        "title": "Ring",
        "productOptions": [{"name": "SKU", "values": [{"name": "827748"}]}],
        "variants": [{"sku": "827748", "optionValues": [{"optionName": "SKU", "name": "827748"}]}],
        "files": [
            {
                "originalSource": "https://example.test/a.jpg",
                "alt": "827749 - Image 1",
                "contentType": "IMAGE",
                "filename": "827749-1a-1.jpg",
            }
        ],
    },
}
