"""productVariantAppendMedia: READY media only (NON_READY_MEDIA by code), one media per variant,
at most 100 pairs per call, all or nothing."""

from __future__ import annotations

from typing import Any

from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import ImageUrl, MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

APPEND = load_document("variant_append_media")
PRODUCT_SET = load_document("product_set")
READ = """
query($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) {
    id
    media(first: 10) { nodes { id status } }
    variants(first: 10) { nodes { id sku media(first: 1) { nodes { id } } } }
  }
}
"""


def _product(session: SandboxSession, handle: str, image_url: ImageUrl, images: int = 2) -> Any:
    files = [
        {"originalSource": image_url(f"{handle}-{n}.jpg"), "contentType": "IMAGE"}
        for n in range(images)
    ]
    payload = session.data(PRODUCT_SET, product_line(handle, ("1", "2"), files))["productSet"]
    assert payload["userErrors"] == []
    return session.data(READ, {"handle": handle})["productByIdentifier"]


def _ready(session: SandboxSession, handle: str) -> Any:
    return wait_for(
        lambda: session.data(READ, {"handle": handle})["productByIdentifier"],
        lambda p: all(m["status"] == "READY" for m in p["media"]["nodes"]),
    )


def _append(session: SandboxSession, product_id: str, pairs: list[tuple[str, list[str]]]) -> Any:
    variant_media = [{"variantId": v, "mediaIds": m} for v, m in pairs]
    variables = {"productId": product_id, "variantMedia": variant_media}
    return session.data(APPEND, variables)["productVariantAppendMedia"]


def _codes(payload: Any) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def test_media_that_is_not_ready_is_refused_by_code_then_attached_once_ready(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(media_processing_delay=0.8)
    product = _product(session, "ring", image_url, images=1)
    variant = product["variants"]["nodes"][0]["id"]
    media = product["media"]["nodes"][0]["id"]
    refused = _append(session, product["id"], [(variant, [media])])
    assert _codes(refused) == ["NON_READY_MEDIA"]
    assert refused["userErrors"][0]["field"] == ["variantMedia", "0", "mediaIds"]
    assert refused["product"] is None and refused["productVariants"] is None

    _ready(session, "ring")
    attached = _append(session, product["id"], [(variant, [media])])
    assert attached["userErrors"] == []
    assert attached["productVariants"] == [{"id": variant}]
    after = session.data(READ, {"handle": "ring"})["productByIdentifier"]
    assert after["variants"]["nodes"][0]["media"]["nodes"] == [{"id": media}]


def test_a_variant_holds_one_media(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    _product(sandbox, "one", image_url)
    product = _ready(sandbox, "one")
    variant = product["variants"]["nodes"][0]["id"]
    first, second = (m["id"] for m in product["media"]["nodes"])
    assert _codes(_append(sandbox, product["id"], [(variant, [first, second])])) == [
        "TOO_MANY_MEDIA_PER_INPUT_PAIR"
    ]
    assert _append(sandbox, product["id"], [(variant, [first])])["userErrors"] == []
    assert _codes(_append(sandbox, product["id"], [(variant, [second])])) == [
        "PRODUCT_VARIANT_ALREADY_HAS_MEDIA"
    ]


def test_more_than_100_pairs_are_refused(sandbox: SandboxSession) -> None:
    product_id = sandbox.data(PRODUCT_SET, product_line("many"))["productSet"]["product"]["id"]
    pairs = [
        (f"gid://shopify/ProductVariant/{n}", [f"gid://shopify/MediaImage/{n}"]) for n in range(101)
    ]
    payload = _append(sandbox, product_id, pairs)
    assert _codes(payload) == ["MAXIMUM_VARIANT_MEDIA_PAIRS_EXCEEDED"]


def test_every_pair_is_checked_and_nothing_is_attached_after_an_error(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    _product(sandbox, "mine", image_url)
    _product(sandbox, "other", image_url, images=1)
    mine, other = _ready(sandbox, "mine"), _ready(sandbox, "other")
    variant_1, variant_2 = (v["id"] for v in mine["variants"]["nodes"])
    media_1 = mine["media"]["nodes"][0]["id"]
    payload = _append(
        sandbox,
        mine["id"],
        [
            (variant_1, [media_1]),
            (other["variants"]["nodes"][0]["id"], [media_1]),
            (variant_2, [other["media"]["nodes"][0]["id"]]),
            (variant_1, [media_1]),
        ],
    )
    assert _codes(payload) == [
        "PRODUCT_VARIANT_DOES_NOT_EXIST_ON_PRODUCT",
        "MEDIA_DOES_NOT_EXIST_ON_PRODUCT",
        "PRODUCT_VARIANT_SPECIFIED_MULTIPLE_TIMES",
    ]
    after = sandbox.data(READ, {"handle": "mine"})["productByIdentifier"]
    assert all(v["media"]["nodes"] == [] for v in after["variants"]["nodes"])
    missing = _append(sandbox, "gid://shopify/Product/1", [(variant_1, [media_1])])
    assert _codes(missing) == ["PRODUCT_DOES_NOT_EXIST"]


def test_append_media_runs_as_a_bulk_mutation(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    _product(sandbox, "bulk", image_url)
    product = _ready(sandbox, "bulk")
    media = [m["id"] for m in product["media"]["nodes"]]
    pairs = [
        {"variantId": v["id"], "mediaIds": [m]}
        for v, m in zip(product["variants"]["nodes"], media, strict=True)
    ]
    run = sandbox.run_bulk_mutation(APPEND, [{"productId": product["id"], "variantMedia": pairs}])
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    (result,) = sandbox.results(operation["url"])
    assert result["data"]["productVariantAppendMedia"]["userErrors"] == []
    after = sandbox.data(READ, {"handle": "bulk"})["productByIdentifier"]
    assert [v["media"]["nodes"][0]["id"] for v in after["variants"]["nodes"]] == media
