"""The append-only media mutations of the sandbox shop: productUpdate appending media, fileUpdate
(alt, rename, new content, product references), productVariantDetachMedia, productReorderMedia
with job(id:), and MediaImage.originalSource; each as an ordinary call and in a bulk mutation."""

from __future__ import annotations

from typing import Any

from bulkimg.demo.samples import image_bytes
from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import ImageUrl, MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
APPEND = load_document("variant_append_media")
UPDATE = load_document("product_update_media")
FILE_UPDATE = load_document("file_update")
DETACH = load_document("variant_detach_media")
REORDER = load_document("product_reorder_media")
READ = """
query($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) {
    id
    title
    vendor
    tags
    media(first: 250) {
      nodes {
        id
        alt
        status
        ... on MediaImage {
          image { url width height }
          originalSource { fileSize url }
        }
      }
    }
    variants(first: 10) { nodes { id sku media(first: 1) { nodes { id } } } }
  }
}
"""
NODE = """
query($id: ID!) {
  node(id: $id) { id ... on MediaImage { alt status image { url width height } } }
}
"""
JOB = "query($id: ID!) { job(id: $id) { id done } }"


def _read(session: SandboxSession, handle: str) -> Any:
    return session.data(READ, {"handle": handle})["productByIdentifier"]


def _ready(session: SandboxSession, handle: str, count: int | None = None) -> Any:
    def done(p: Any) -> bool:
        nodes = p["media"]["nodes"]
        enough = count is None or len(nodes) == count
        return enough and all(m["status"] == "READY" for m in nodes)

    return wait_for(lambda: _read(session, handle), done)


def _product(session: SandboxSession, handle: str, image_url: ImageUrl, images: int = 2) -> Any:
    files = [
        {"originalSource": image_url(f"{handle}-{n}.jpg"), "contentType": "IMAGE"}
        for n in range(images)
    ]
    payload = session.data(PRODUCT_SET, product_line(handle, ("1", "2"), files))["productSet"]
    assert payload["userErrors"] == []
    return _ready(session, handle, images)


def _ids(product: Any) -> list[str]:
    return [m["id"] for m in product["media"]["nodes"]]


def _names(product: Any) -> list[str]:
    return [m["image"]["url"].split("/")[-1].split("?")[0] for m in product["media"]["nodes"]]


def _codes(payload: Any) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def _update(session: SandboxSession, product: dict[str, Any], media: list[Any] | None) -> Any:
    return session.data(UPDATE, {"product": product, "media": media})["productUpdate"]


def _image(url: str, alt: str | None = None) -> dict[str, Any]:
    return {"originalSource": url, "mediaContentType": "IMAGE", "alt": alt}


def _files(session: SandboxSession, files: list[dict[str, Any]]) -> Any:
    return session.data(FILE_UPDATE, {"files": files})["fileUpdate"]


def _link(session: SandboxSession, product: Any, variant: int, media: int) -> None:
    pairs = [
        {
            "variantId": product["variants"]["nodes"][variant]["id"],
            "mediaIds": [product["media"]["nodes"][media]["id"]],
        }
    ]
    payload = session.data(APPEND, {"productId": product["id"], "variantMedia": pairs})
    assert payload["productVariantAppendMedia"]["userErrors"] == []


# --- productUpdate ----------------------------------------------------------------------------


def test_product_update_appends_media_at_the_end_and_changes_nothing_else(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    _link(sandbox, _product(sandbox, "append", image_url), 0, 1)
    before = _read(sandbox, "append")
    payload = _update(sandbox, {"id": before["id"]}, [_image(image_url("new.jpg"), "New")])
    assert payload == {"product": {"id": before["id"]}, "userErrors": []}
    queued = _read(sandbox, "append")
    assert _ids(queued)[:2] == _ids(before)
    assert queued["media"]["nodes"][2]["status"] in ("UPLOADED", "PROCESSING", "READY")
    after = _ready(sandbox, "append", 3)
    assert after["media"]["nodes"][2]["alt"] == "New"
    assert _names(after)[2] == "new.jpg"
    assert after["title"] == before["title"] and after["variants"] == before["variants"]


def test_product_update_names_a_clashing_file_with_a_uuid(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "clash", image_url, images=1)
    taken = _names(product)[0]
    assert _update(sandbox, {"id": product["id"]}, [_image(image_url(taken))])["userErrors"] == []
    name = _names(_ready(sandbox, "clash", 2))[1]
    stem = taken.removesuffix(".jpg")
    assert name.startswith(f"{stem}_") and name.endswith(".jpg") and len(name) == len(taken) + 37


def test_product_update_applies_modelled_fields_and_refuses_others(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "fields", image_url, images=1)
    changed = {"id": product["id"], "title": "Renamed", "vendor": "Acme", "tags": ["a", "b"]}
    assert _update(sandbox, changed, None)["userErrors"] == []
    after = _read(sandbox, "fields")
    assert (after["title"], after["vendor"], after["tags"]) == ("Renamed", "Acme", ["a", "b"])

    refused = _update(sandbox, {"id": product["id"], "title": "X", "seo": {"title": "S"}}, None)
    assert refused["product"] is None
    assert refused["userErrors"] == [
        {"field": ["product", "seo"], "message": "`seo` is not emulated by the sandbox shop"}
    ]
    assert _read(sandbox, "fields")["title"] == "Renamed"


def test_product_update_refuses_the_deprecated_input_argument(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "deprecated", image_url, images=1)
    mutation = """
    mutation($input: ProductInput!) {
      productUpdate(input: $input) { product { id } userErrors { field message } }
    }
    """
    payload = sandbox.data(mutation, {"input": {"id": product["id"], "title": "Old API"}})
    assert payload["productUpdate"]["product"] is None
    assert payload["productUpdate"]["userErrors"][0]["field"] == ["input"]
    assert "not emulated" in payload["productUpdate"]["userErrors"][0]["message"]
    assert _read(sandbox, "deprecated")["title"] != "Old API"


def test_product_update_media_limit_is_250_per_product_all_or_nothing(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "limit", image_url, images=1)
    source = "http://127.0.0.1:9/missing-{}.jpg"  # never READY: only the count matters here
    too_many = [_image(source.format(n)) for n in range(250)]
    refused = _update(sandbox, {"id": product["id"], "title": "Changed"}, too_many)
    assert refused["product"] is None
    assert "limit of media per product" in refused["userErrors"][0]["message"]
    after = _read(sandbox, "limit")
    assert len(after["media"]["nodes"]) == 1 and after["title"] != "Changed"
    assert _update(sandbox, {"id": product["id"]}, too_many[:249])["userErrors"] == []
    full = _update(sandbox, {"id": product["id"]}, [_image(source.format("one-more"))])
    assert full["userErrors"][0]["field"] == ["media"]
    assert len(_read(sandbox, "limit")["media"]["nodes"]) == 250


def test_product_update_of_an_unknown_product_is_a_user_error(sandbox: SandboxSession) -> None:
    payload = _update(sandbox, {"id": "gid://shopify/Product/1"}, None)
    assert payload == {
        "product": None,
        "userErrors": [{"field": ["product", "id"], "message": "Product does not exist"}],
    }


def test_product_update_runs_as_a_bulk_mutation(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    first = _product(sandbox, "bulk-a", image_url, images=1)
    second = _product(sandbox, "bulk-b", image_url, images=1)
    lines = [
        {"product": {"id": p["id"]}, "media": [_image(image_url(f"{n}-extra.png"))]}
        for n, p in enumerate((first, second))
    ]
    run = sandbox.run_bulk_mutation(UPDATE, lines)
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    results = sandbox.results(operation["url"])
    assert sorted(r["__lineNumber"] for r in results) == [0, 1]
    assert all(r["data"]["productUpdate"]["userErrors"] == [] for r in results)
    assert _names(_ready(sandbox, "bulk-a", 2))[1] == "0-extra.png"
    assert _names(_ready(sandbox, "bulk-b", 2))[1] == "1-extra.png"


# --- MediaImage.originalSource ----------------------------------------------------------------


def test_original_source_is_the_cdn_copy_and_the_bytes_downloaded(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    source = image_url("orig.png", size=(80, 60))
    payload = sandbox.data(PRODUCT_SET, product_line("orig", ("1",), [{"originalSource": source}]))
    assert payload["productSet"]["userErrors"] == []
    (media,) = _ready(sandbox, "orig", 1)["media"]["nodes"]
    assert (media["image"]["width"], media["image"]["height"]) == (80, 60)
    assert media["originalSource"]["fileSize"] == len(image_bytes("png", 80, 60))
    url = media["originalSource"]["url"]
    assert url.startswith("https://cdn.sandbox.test/") and "orig.png" in url
    assert "127.0.0.1" not in url and "Signature" not in url and "X-Amz" not in url


def test_original_source_is_null_until_ready(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(media_processing_delay=3.0)
    line = product_line("slow", ("1",), [{"originalSource": image_url("slow.jpg")}])
    assert session.data(PRODUCT_SET, line)["productSet"]["userErrors"] == []
    (media,) = _read(session, "slow")["media"]["nodes"]
    assert media["status"] != "READY" and media["originalSource"] is None


def test_bulk_query_exports_original_source_and_image_size(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    source = image_url("export.jpg", size=(40, 30))
    line = product_line("export", ("1",), [{"originalSource": source}])
    assert sandbox.data(PRODUCT_SET, line)["productSet"]["userErrors"] == []
    _ready(sandbox, "export", 1)
    query = """
    {
      products {
        edges {
          node {
            id
            media {
              edges {
                node {
                  id
                  alt
                  status
                  ... on MediaImage {
                    image { url width height }
                    originalSource { fileSize url }
                  }
                }
              }
            }
          }
        }
      }
    }
    """
    run = sandbox.data(load_document("bulk_operation_run_query"), {"query": query})
    operation = sandbox.wait_operation(run["bulkOperationRunQuery"]["bulkOperation"]["id"])
    media = [r for r in sandbox.results(operation["url"]) if "__parentId" in r]
    assert len(media) == 1
    assert media[0]["image"]["width"] == 40 and media[0]["image"]["height"] == 30
    assert media[0]["originalSource"]["fileSize"] == len(image_bytes("jpg", 40, 30))
    assert media[0]["originalSource"]["url"].startswith("https://cdn.sandbox.test/")


# --- fileUpdate -------------------------------------------------------------------------------


def test_file_update_sets_alt_and_renames_keeping_the_extension(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "rename", image_url)
    first, second = _ids(product)
    taken = _names(product)[1]
    payload = _files(sandbox, [{"id": first, "alt": "Front", "filename": "front.jpg"}])
    assert payload["userErrors"] == []
    assert payload["files"] == [{"id": first, "alt": "Front", "fileStatus": "READY"}]
    after = _read(sandbox, "rename")
    assert _names(after)[0] == "front.jpg" and after["media"]["nodes"][0]["alt"] == "Front"

    wrong_extension = _files(sandbox, [{"id": first, "filename": "front.png"}])
    assert _codes(wrong_extension) == ["INVALID_FILENAME_EXTENSION"]
    clash = _files(sandbox, [{"id": first, "filename": taken}])
    assert _codes(clash) == ["FILENAME_ALREADY_EXISTS"]
    assert clash["userErrors"][0]["field"] == ["files", "0", "filename"]
    assert _codes(_files(sandbox, [{"id": second, "filename": "a/b.jpg"}])) == ["INVALID_FILENAME"]
    assert _codes(_files(sandbox, [{"id": second, "alt": "x" * 513}])) == [
        "ALT_VALUE_LIMIT_EXCEEDED"
    ]


def test_file_update_new_content_keeps_id_position_and_variant_links(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "content", image_url)
    _link(sandbox, product, 0, 0)
    target = _ids(product)[0]
    name = _names(product)[0]
    source = image_url("replacement.jpg", size=(120, 90))
    payload = _files(sandbox, [{"id": target, "originalSource": source}])
    assert payload["userErrors"] == []
    assert payload["files"][0]["fileStatus"] in ("UPLOADED", "PROCESSING")
    after = _ready(sandbox, "content", 2)
    assert _ids(after) == _ids(product)
    media = after["media"]["nodes"][0]
    assert (media["image"]["width"], media["image"]["height"]) == (120, 90)
    assert media["originalSource"]["fileSize"] == len(image_bytes("jpg", 120, 90))
    assert _names(after)[0] == name  # the same file, new bytes
    assert after["variants"]["nodes"][0]["media"]["nodes"] == [{"id": target}]

    mismatch = _files(sandbox, [{"id": target, "originalSource": image_url("other.png")}])
    assert _codes(mismatch) == ["MISMATCHED_FILENAME_AND_ORIGINAL_SOURCE"]
    bad = _files(sandbox, [{"id": target, "originalSource": "ftp://example.test/a.jpg"}])
    assert _codes(bad) == ["INVALID_IMAGE_SOURCE_URL"]


def test_file_update_needs_ready_files(make_sandbox: MakeSandbox, image_url: ImageUrl) -> None:
    session: SandboxSession = make_sandbox(media_processing_delay=3.0)
    files = [
        {"originalSource": image_url("pending.jpg")},
        {"originalSource": "http://127.0.0.1:9/broken.jpg"},
    ]
    assert (
        session.data(PRODUCT_SET, product_line("pending", ("1",), files))["productSet"][
            "userErrors"
        ]
        == []
    )
    pending, broken = _ids(_read(session, "pending"))
    assert _codes(_files(session, [{"id": pending, "alt": "x"}])) == ["NON_READY_STATE"]
    wait_for(
        lambda: _read(session, "pending")["media"]["nodes"][1]["status"], lambda s: s == "FAILED"
    )
    assert _codes(_files(session, [{"id": broken, "alt": "x"}])) == ["INVALID_FAILED_MEDIA_STATE"]


def test_file_update_is_all_or_nothing(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    product = _product(sandbox, "atomic", image_url, images=1)
    (media,) = _ids(product)
    payload = _files(
        sandbox,
        [
            {"id": media, "alt": "Changed"},
            {"id": "gid://shopify/MediaImage/1", "alt": "x"},
            {"id": "gid://shopify/GenericFile/1", "alt": "x"},
            {"id": media, "alt": "again"},
        ],
    )
    assert payload["files"] is None
    assert _codes(payload) == ["FILE_DOES_NOT_EXIST", "INVALID", "INVALID"]
    assert "not emulated" in payload["userErrors"][1]["message"]
    assert _read(sandbox, "atomic")["media"]["nodes"][0]["alt"] != "Changed"
    assert _codes(_files(sandbox, [{"id": media}])) == ["MISSING_ARGUMENTS"]


def test_file_update_reference_removed_leaves_the_product_but_stays_in_the_library(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "remove", image_url)
    _link(sandbox, product, 1, 0)
    gone, kept = _ids(product)
    name = _names(product)[0]
    payload = _files(sandbox, [{"id": gone, "referencesToRemove": [product["id"]]}])
    assert payload["userErrors"] == []
    after = _read(sandbox, "remove")
    assert _ids(after) == [kept]
    assert after["variants"]["nodes"][1]["media"]["nodes"] == []
    library = sandbox.data(NODE, {"id": gone})["node"]
    assert library["id"] == gone and library["status"] == "READY"

    # Its name stays taken shop-wide: a new file of that name gets a UUID.
    assert _update(sandbox, {"id": product["id"]}, [_image(image_url(name))])["userErrors"] == []
    assert _names(_ready(sandbox, "remove", 2))[1] != name

    again = _files(sandbox, [{"id": gone, "referencesToRemove": [product["id"]]}])
    assert _codes(again) == ["INVALID"]
    unknown = _files(sandbox, [{"id": kept, "referencesToRemove": ["gid://shopify/Product/1"]}])
    assert _codes(unknown) == ["REFERENCE_TARGET_DOES_NOT_EXIST"]


def test_file_update_reference_added_appends_the_file_to_the_product(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    source = _product(sandbox, "from", image_url, images=1)
    target = _product(sandbox, "to", image_url)
    (moved,) = _ids(source)
    on_other = _files(sandbox, [{"id": moved, "referencesToAdd": [target["id"]]}])
    assert _codes(on_other) == ["INVALID"]  # a file on two products is not emulated
    move = {"id": moved, "referencesToRemove": [source["id"]], "referencesToAdd": [target["id"]]}
    assert _files(sandbox, [move])["userErrors"] == []
    assert _ids(_read(sandbox, "from")) == []
    assert _ids(_read(sandbox, "to")) == [*_ids(target), moved]


def test_file_update_runs_as_a_bulk_mutation(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    product = _product(sandbox, "bulk-files", image_url)
    first, second = _ids(product)
    lines = [{"files": [{"id": first, "alt": "One"}]}, {"files": [{"id": second, "alt": "Two"}]}]
    run = sandbox.run_bulk_mutation(FILE_UPDATE, lines)
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    results = sandbox.results(operation["url"])
    assert all(r["data"]["fileUpdate"]["userErrors"] == [] for r in results)
    alts = [m["alt"] for m in _read(sandbox, "bulk-files")["media"]["nodes"]]
    assert alts == ["One", "Two"]


# --- fileDelete -------------------------------------------------------------------------------

FILE_DELETE = load_document("file_delete")


def test_file_delete_removes_the_file_from_its_product_its_variants_and_the_shop(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "deleting", image_url)
    first, second = _ids(product)
    _link(sandbox, product, 0, 0)
    payload = sandbox.data(FILE_DELETE, {"fileIds": [first]})["fileDelete"]
    assert payload == {"deletedFileIds": [first], "userErrors": []}
    after = _read(sandbox, "deleting")
    assert _ids(after) == [second]
    assert after["variants"]["nodes"][0]["media"]["nodes"] == []
    assert sandbox.data(NODE, {"id": first})["node"] is None


def test_file_delete_is_all_or_nothing_and_refuses_files_in_processing(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session = make_sandbox(media_processing_delay=30.0)
    files = [{"originalSource": image_url("slow.jpg"), "contentType": "IMAGE"}]
    made = session.data(PRODUCT_SET, product_line("slow", ("1",), files))["productSet"]
    processing = made["product"]["media"]["nodes"][0]["id"]
    unknown = "gid://shopify/MediaImage/1"
    payload = session.data(FILE_DELETE, {"fileIds": [processing, unknown]})["fileDelete"]
    assert payload["deletedFileIds"] is None
    assert _codes(payload) == ["NON_READY_STATE", "FILE_DOES_NOT_EXIST"]
    assert session.data(NODE, {"id": processing})["node"] is not None


def test_file_delete_runs_as_a_bulk_mutation(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    product = _product(sandbox, "bulk-delete", image_url)
    first, second = _ids(product)
    run = sandbox.run_bulk_mutation(FILE_DELETE, [{"fileIds": [first]}, {"fileIds": [second]}])
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    results = sandbox.results(operation["url"])
    assert all(r["data"]["fileDelete"]["userErrors"] == [] for r in results)
    assert _ids(_read(sandbox, "bulk-delete")) == []


# --- productVariantDetachMedia ----------------------------------------------------------------


def _detach(session: SandboxSession, product_id: str, pairs: list[tuple[str, list[str]]]) -> Any:
    variant_media = [{"variantId": v, "mediaIds": m} for v, m in pairs]
    variables = {"productId": product_id, "variantMedia": variant_media}
    return session.data(DETACH, variables)["productVariantDetachMedia"]


def test_detach_media_removes_the_variant_link_and_keeps_the_media(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "detach", image_url)
    _link(sandbox, product, 0, 0)
    variant = product["variants"]["nodes"][0]["id"]
    media = _ids(product)[0]
    payload = _detach(sandbox, product["id"], [(variant, [media])])
    assert payload == {
        "product": {"id": product["id"]},
        "productVariants": [{"id": variant}],
        "userErrors": [],
    }
    after = _read(sandbox, "detach")
    assert after["variants"]["nodes"][0]["media"]["nodes"] == []
    assert _ids(after) == _ids(product)


def test_detach_media_errors_by_code_all_or_nothing(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "detach-codes", image_url)
    _link(sandbox, product, 0, 0)
    (v0, v1) = (v["id"] for v in product["variants"]["nodes"])
    m0, m1 = _ids(product)
    other = _product(sandbox, "detach-other", image_url, images=1)
    foreign_variant = other["variants"]["nodes"][0]["id"]
    foreign_media = _ids(other)[0]

    mixed = _detach(sandbox, product["id"], [(v0, [m0]), (v1, [m1])])
    assert _codes(mixed) == ["MEDIA_IS_NOT_ATTACHED_TO_VARIANT"]
    assert mixed["userErrors"][0]["field"] == ["variantMedia", "1", "mediaIds"]
    assert mixed["product"] is None and mixed["productVariants"] is None
    assert _read(sandbox, "detach-codes")["variants"]["nodes"][0]["media"]["nodes"] == [{"id": m0}]
    assert _codes(_detach(sandbox, product["id"], [(foreign_variant, [m0])])) == [
        "PRODUCT_VARIANT_DOES_NOT_EXIST_ON_PRODUCT"
    ]
    assert _codes(_detach(sandbox, product["id"], [(v0, [foreign_media])])) == [
        "MEDIA_DOES_NOT_EXIST_ON_PRODUCT"
    ]
    assert _codes(_detach(sandbox, product["id"], [(v0, [m0]), (v0, [m0])])) == [
        "PRODUCT_VARIANT_SPECIFIED_MULTIPLE_TIMES"
    ]
    assert _codes(_detach(sandbox, product["id"], [(v0, [])])) == ["MISSING_ARGUMENTS"]
    assert _codes(_detach(sandbox, "gid://shopify/Product/1", [(v0, [m0])])) == [
        "PRODUCT_DOES_NOT_EXIST"
    ]


def test_detach_media_takes_at_most_100_pairs(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    product = _product(sandbox, "detach-cap", image_url, images=1)
    variant = product["variants"]["nodes"][0]["id"]
    media = _ids(product)[0]
    payload = _detach(sandbox, product["id"], [(variant, [media])] * 101)
    assert _codes(payload) == ["MAXIMUM_VARIANT_MEDIA_PAIRS_EXCEEDED"]


def test_detach_media_runs_as_a_bulk_mutation(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    product = _product(sandbox, "detach-bulk", image_url)
    _link(sandbox, product, 0, 0)
    _link(sandbox, product, 1, 1)
    pairs = [
        {"variantId": v["id"], "mediaIds": [m]}
        for v, m in zip(product["variants"]["nodes"], _ids(product), strict=True)
    ]
    run = sandbox.run_bulk_mutation(DETACH, [{"productId": product["id"], "variantMedia": pairs}])
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    (result,) = sandbox.results(operation["url"])
    assert result["data"]["productVariantDetachMedia"]["userErrors"] == []
    after = _read(sandbox, "detach-bulk")
    assert all(v["media"]["nodes"] == [] for v in after["variants"]["nodes"])


# --- productReorderMedia and job(id:) ---------------------------------------------------------


def _reorder(session: SandboxSession, product_id: str, moves: list[tuple[str, Any]]) -> Any:
    variables = {"id": product_id, "moves": [{"id": m, "newPosition": p} for m, p in moves]}
    return session.data(REORDER, variables)["productReorderMedia"]


def test_reorder_media_applies_moves_in_order_once_the_job_is_done(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(media_reorder_delay=2.0)
    product = _product(session, "reorder", image_url, images=4)
    a, b, c, d = _ids(product)
    # a b c d -> (d to 0) d a b c -> (a past the end) d b c a -> (c to 1) d c b a
    payload = _reorder(session, product["id"], [(d, "0"), (a, "99"), (c, 1)])
    assert payload["mediaUserErrors"] == []
    job = payload["job"]
    assert job["done"] is False and job["id"].startswith("gid://shopify/Job/")
    assert _ids(_read(session, "reorder")) == [a, b, c, d]  # not yet
    assert session.data(JOB, {"id": job["id"]})["job"] == {"id": job["id"], "done": False}
    wait_for(lambda: session.data(JOB, {"id": job["id"]})["job"]["done"], bool)
    assert _ids(_read(session, "reorder")) == [d, c, b, a]


def test_reorder_media_unknown_media_is_a_user_error(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    product = _product(sandbox, "reorder-codes", image_url)
    other = _product(sandbox, "reorder-other", image_url, images=1)
    first = _ids(product)[0]
    payload = _reorder(sandbox, product["id"], [(first, 1), (_ids(other)[0], 0)])
    assert payload["job"] is None
    assert payload["mediaUserErrors"] == [
        {
            "field": ["moves", "1", "id"],
            "message": "Media does not exist on the given product.",
            "code": "MEDIA_DOES_NOT_EXIST_ON_PRODUCT",
        }
    ]
    missing = _reorder(sandbox, "gid://shopify/Product/1", [(first, 0)])
    assert [e["code"] for e in missing["mediaUserErrors"]] == ["PRODUCT_DOES_NOT_EXIST"]
    time_later = _read(sandbox, "reorder-codes")
    assert _ids(time_later) == _ids(product)


def test_reorder_media_runs_as_a_bulk_mutation(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(media_reorder_delay=0.1)
    product = _product(session, "reorder-bulk", image_url)
    first, second = _ids(product)
    run = session.run_bulk_mutation(
        REORDER, [{"id": product["id"], "moves": [{"id": second, "newPosition": "0"}]}]
    )
    operation = session.wait_operation(run["bulkOperation"]["id"])
    (result,) = session.results(operation["url"])
    job = result["data"]["productReorderMedia"]["job"]
    wait_for(lambda: session.data(JOB, {"id": job["id"]})["job"]["done"], bool)
    assert _ids(_read(session, "reorder-bulk")) == [second, first]


# --- state files ------------------------------------------------------------------------------


def test_a_state_file_from_before_these_mutations_gains_their_tables(
    make_sandbox: MakeSandbox, tmp_path: Any, image_url: ImageUrl
) -> None:
    import sqlite3

    state = tmp_path / "old.sqlite"
    old: SandboxSession = make_sandbox(state)
    product = _product(old, "old", image_url, images=1)
    old.shop.close()
    with sqlite3.connect(state) as db:
        for table in ("detached_media", "media_sizes", "jobs"):
            db.execute(f"DROP TABLE {table}")
    session: SandboxSession = make_sandbox(state)
    assert _ids(_read(session, "old")) == _ids(product)
    assert (
        _update(session, {"id": product["id"]}, [_image(image_url("later.jpg"))])["userErrors"]
        == []
    )
    payload = _reorder(session, product["id"], [(_ids(product)[0], 1)])
    assert payload["mediaUserErrors"] == []
