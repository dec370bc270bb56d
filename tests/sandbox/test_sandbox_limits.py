"""The limits Shopify enforces, enforced by the sandbox too: 250 items per input array, media per
product, 2,048 variants per product, the variant creation throttle, shop-wide file names."""

from __future__ import annotations

import copy
from typing import Any

from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import ImageUrl, MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
APPEND = load_document("variant_append_media")
STAGE = load_document("staged_uploads_create")
UNREACHABLE = "http://127.0.0.1:9/images"
MEDIA = """
query($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) {
    id
    variants(first: 5) { nodes { id } }
    media(first: 10) {
      nodes { id status ... on MediaImage { image { url } mediaErrors { code } } }
    }
  }
}
"""


def _file(name: str, **extra: Any) -> dict[str, Any]:
    return {"originalSource": f"{UNREACHABLE}/{name}", "contentType": "IMAGE"} | extra


def _payload(session: SandboxSession, variables: dict[str, Any]) -> Any:
    payload = session.data(PRODUCT_SET, variables)["productSet"]
    return payload


def _codes(payload: Any) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def _exists(session: SandboxSession, handle: str) -> bool:
    found = session.data(MEDIA, {"handle": handle})["productByIdentifier"]
    return found is not None


def _too_big(body: Any, field: str) -> None:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED", error
    assert "251" in error["message"] and "250" in error["message"]
    assert body["data"] == {field: None}


def _grid(handle: str, rows: int, columns: int) -> dict[str, Any]:
    """A product with two options and rows x columns variants."""
    line = product_line(handle)
    line["input"]["productOptions"] = [
        {"name": "Row", "values": [{"name": f"r{r}"} for r in range(rows)]},
        {"name": "Column", "values": [{"name": f"c{c}"} for c in range(columns)]},
    ]
    line["input"]["variants"] = [
        {
            "sku": f"{r}-{c}",
            "optionValues": [
                {"optionName": "Row", "name": f"r{r}"},
                {"optionName": "Column", "name": f"c{c}"},
            ],
        }
        for r in range(rows)
        for c in range(columns)
    ]
    return line


def test_input_arrays_over_250_items_are_a_top_level_max_input_size_exceeded_error(
    sandbox: SandboxSession,
) -> None:
    files = product_line("files", files=[_file(f"{n}.jpg") for n in range(251)])
    tags = product_line("tags")
    tags["input"]["tags"] = [f"t{n}" for n in range(251)]
    values = product_line("values", tuple(str(n) for n in range(251)))
    for variables in (files, tags, values):
        _too_big(sandbox.gql(PRODUCT_SET, variables), "productSet")
        assert not _exists(sandbox, variables["identifier"]["handle"])

    item = {"resource": "BULK_MUTATION_VARIABLES", "filename": "a.jsonl"}
    item |= {"mimeType": "text/jsonl", "httpMethod": "POST"}
    _too_big(sandbox.gql(STAGE, {"input": [item] * 251}), "stagedUploadsCreate")

    assert _payload(sandbox, product_line("pairs"))["userErrors"] == []
    product = sandbox.data(MEDIA, {"handle": "pairs"})["productByIdentifier"]
    variant = product["variants"]["nodes"][0]["id"]
    pairs = [{"variantId": variant, "mediaIds": ["gid://shopify/MediaImage/1"]}] * 251
    body = sandbox.gql(APPEND, {"productId": product["id"], "variantMedia": pairs})
    _too_big(body, "productVariantAppendMedia")

    # 250 items are fine.
    tags["input"]["tags"] = tags["input"]["tags"][:250]
    assert _payload(sandbox, tags)["userErrors"] == []


def test_variants_are_not_capped_at_250_but_at_2048_resulting_variants(
    sandbox: SandboxSession,
) -> None:
    payload = _payload(sandbox, _grid("many", 20, 15))  # 300 variants, under 250 values each
    assert payload["userErrors"] == []
    over = _payload(sandbox, _grid("over", 50, 41))  # 2,050
    assert _codes(over) == ["VARIANTS_OVER_LIMIT"] and over["product"] is None
    exactly = _payload(sandbox, _grid("many", 32, 64))  # 2,048 replace the 300
    assert exactly["userErrors"] == []
    count = "query($id: ID!) { product(id: $id) { variantsCount { count } } }"
    product_id = exactly["product"]["id"]
    assert sandbox.data(count, {"id": product_id})["product"]["variantsCount"]["count"] == 2048


def test_media_per_product_limit(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(max_media_per_product=2)
    three = product_line("full", files=[_file(f"{n}.jpg") for n in range(3)])
    payload = _payload(session, three)
    assert _codes(payload) == ["INVALID_INPUT"] and payload["product"] is None
    assert payload["userErrors"][0]["field"] == ["input", "files"]
    assert "PRODUCT_MEDIA_LIMIT_EXCEEDED" in payload["userErrors"][0]["message"]
    assert not _exists(session, "full")

    two = product_line("full", files=[_file(f"{n}.jpg") for n in range(2)])
    assert _payload(session, two)["userErrors"] == []
    media = session.data(MEDIA, {"handle": "full"})["productByIdentifier"]["media"]["nodes"]
    kept = [{"id": m["id"]} for m in media]
    more = {"identifier": {"handle": "full"}, "input": {"files": [*kept, _file("x.jpg")]}}
    assert _codes(_payload(session, more)) == ["INVALID_INPUT"]


def test_variant_creation_throttle_once_the_shop_holds_the_threshold(
    make_sandbox: MakeSandbox,
) -> None:
    session: SandboxSession = make_sandbox(variant_throttle_threshold=5, variant_throttle_per_day=6)
    skus = ("1", "2", "3", "4")
    assert _payload(session, product_line("a", skus))["userErrors"] == []  # 4 variants, 4 new
    assert _payload(session, product_line("b", ("1", "2")))["userErrors"] == []  # 6 in the day
    refused = _payload(session, product_line("c", ("1",)))  # the 7th new variant of the day
    assert _codes(refused) == ["VARIANTS_OVER_LIMIT"] and refused["product"] is None
    assert "VARIANT_THROTTLE_EXCEEDED" in refused["userErrors"][0]["message"]
    assert refused["userErrors"][0]["field"] == ["input", "variants"]
    assert not _exists(session, "c")

    # Re-sending product a without variant ids creates 4 new variants: refused too. Naming
    # them by id creates none: fine.
    assert _codes(_payload(session, product_line("a", skus))) == ["VARIANTS_OVER_LIMIT"]
    read = """query($h: String!) { productByIdentifier(identifier: {handle: $h}) {
        options { id } variants(first: 10) { nodes { id sku } } } }"""
    a = session.data(read, {"h": "a"})["productByIdentifier"]
    by_id = copy.deepcopy(product_line("a", skus))
    by_id["input"]["productOptions"][0]["id"] = a["options"][0]["id"]
    for variant, existing in zip(by_id["input"]["variants"], a["variants"]["nodes"], strict=True):
        variant["id"] = existing["id"]
    assert _payload(session, by_id)["userErrors"] == []


def test_the_throttle_does_not_apply_below_the_threshold(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(
        variant_throttle_threshold=100, variant_throttle_per_day=1
    )
    for handle in ("a", "b", "c"):
        assert _payload(session, product_line(handle, ("1", "2")))["userErrors"] == []


def test_file_names_are_unique_shop_wide(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    first = {"originalSource": image_url("827749-1a-1.jpg"), "contentType": "IMAGE"}
    assert _payload(sandbox, product_line("one", files=[first]))["userErrors"] == []
    other = {"originalSource": image_url("827749-1a-1.jpg"), "contentType": "IMAGE"}
    assert _payload(sandbox, product_line("two", files=[other]))["userErrors"] == []
    raise_error = _file("x.jpg", filename="827749-1a-1.jpg", duplicateResolutionMode="RAISE_ERROR")
    assert _payload(sandbox, product_line("three", files=[raise_error]))["userErrors"] == []

    def media(handle: str) -> Any:
        return wait_for(
            lambda: sandbox.data(MEDIA, {"handle": handle})["productByIdentifier"]["media"],
            lambda m: all(n["status"] in ("READY", "FAILED") for n in m["nodes"]),
        )["nodes"]

    def name(node: Any) -> str:
        return str(node["image"]["url"].split("?")[0].rsplit("/", 1)[1])

    assert name(media("one")[0]) == "827749-1a-1.jpg"
    renamed = name(media("two")[0])
    assert renamed.startswith("827749-1a-1_") and renamed.endswith(".jpg")
    (failed,) = media("three")
    assert failed["status"] == "FAILED"
    assert failed["mediaErrors"] == [{"code": "DUPLICATE_FILENAME_ERROR"}]
