"""productSet: list fields replaced (listed entries kept or created, unlisted deleted), omitted
fields untouched, every call all-or-nothing."""

from __future__ import annotations

import copy
from typing import Any

from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import ImageUrl
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
READ = """
query Read($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) {
    id handle title vendor
    options { id name values }
    variants(first: 50) {
      nodes { id sku price selectedOptions { name value } media(first: 1) { nodes { id } } }
    }
    media(first: 50) {
      nodes { id alt status ... on MediaImage { image { url } mediaErrors { code } } }
    }
  }
}
"""
UNREACHABLE = "http://127.0.0.1:9/images"


def _set(session: SandboxSession, variables: dict[str, Any]) -> Any:
    payload = session.data(PRODUCT_SET, variables)["productSet"]
    return payload


def _ok(session: SandboxSession, variables: dict[str, Any]) -> Any:
    payload = _set(session, variables)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["product"]


def _codes(payload: Any) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


def _read(session: SandboxSession, handle: str) -> Any:
    return session.data(READ, {"handle": handle})["productByIdentifier"]


def _settled(session: SandboxSession, handle: str) -> Any:
    """The product once its media are processed (READY or FAILED)."""
    done = ("READY", "FAILED")
    return wait_for(
        lambda: _read(session, handle),
        lambda product: all(m["status"] in done for m in product["media"]["nodes"]),
    )


def _file(name: str, source: str = UNREACHABLE, **extra: Any) -> dict[str, Any]:
    return {"originalSource": f"{source}/{name}", "alt": name, "contentType": "IMAGE"} | extra


def _update(identifier: str, **fields: Any) -> dict[str, Any]:
    return {"identifier": {"handle": identifier}, "input": fields}


def test_create_needs_a_title_options_and_variants_and_changes_nothing_otherwise(
    sandbox: SandboxSession,
) -> None:
    payload = _set(sandbox, _update("new-one", files=[_file("a.jpg")]))
    assert payload["product"] is None
    assert sorted(_codes(payload)) == [
        "INVALID_INPUT",
        "PRODUCT_OPTIONS_INPUT_MISSING",
        "VARIANTS_INPUT_MISSING",
    ]
    assert _read(sandbox, "new-one") is None


def _with_ids(line: dict[str, Any], product: Any) -> dict[str, Any]:
    """`line` naming the product's existing option and variants by id (matched by SKU)."""
    line = copy.deepcopy(line)
    ids = {v["sku"]: v["id"] for v in product["variants"]["nodes"]}
    for variant in line["input"]["variants"]:
        if variant["sku"] in ids:
            variant["id"] = ids[variant["sku"]]
    line["input"]["productOptions"][0]["id"] = product["options"][0]["id"]
    return line


def test_listed_variants_are_kept_by_id_or_created_and_unlisted_ones_deleted(
    sandbox: SandboxSession,
) -> None:
    _ok(sandbox, product_line("ring", ("1", "2", "3")))
    before = _read(sandbox, "ring")
    old = {v["sku"]: v["id"] for v in before["variants"]["nodes"]}
    _ok(sandbox, _with_ids(product_line("ring", ("3", "2", "4")), before))
    after = _read(sandbox, "ring")
    variants = after["variants"]["nodes"]
    assert [v["sku"] for v in variants] == ["3", "2", "4"]
    ids = {v["sku"]: v["id"] for v in variants}
    assert ids["2"] == old["2"] and ids["3"] == old["3"]  # matched by id
    assert ids["4"] not in old.values()
    assert after["options"][0]["id"] == before["options"][0]["id"]
    assert after["options"][0]["values"] == ["3", "2", "4"]
    assert variants[0]["selectedOptions"] == [{"name": "SKU", "value": "3"}]
    gone = sandbox.data("query($id: ID!) { node(id: $id) { id } }", {"id": old["1"]})
    assert gone["node"] is None


def test_a_variant_without_id_is_created_never_matched_by_option_values_or_sku(
    sandbox: SandboxSession,
) -> None:
    a = _file("a.jpg")
    line = product_line("new-each-time", ("1", "2"), files=[a])
    line["input"]["variants"][0] |= {"price": "19.99", "barcode": "123", "file": a}
    _ok(sandbox, line)
    before = _read(sandbox, "new-each-time")
    assert before["variants"]["nodes"][0]["media"]["nodes"] != []
    media_id = before["media"]["nodes"][0]["id"]

    # The same option values and SKUs, no ids: every variant is new, the old ones are deleted
    # (with their media links); a new variant's fields come only from the input.
    again = product_line("new-each-time", ("1", "2"), files=[{"id": media_id}])
    _ok(sandbox, again)
    after = _read(sandbox, "new-each-time")
    variants = after["variants"]["nodes"]
    assert [v["sku"] for v in variants] == ["1", "2"]
    old_ids = {v["id"] for v in before["variants"]["nodes"]}
    assert old_ids.isdisjoint(v["id"] for v in variants)
    assert [v["price"] for v in variants] == ["0.00", "0.00"]
    assert all(v["media"]["nodes"] == [] for v in variants)
    assert [m["id"] for m in after["media"]["nodes"]] == [media_id]
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    assert sandbox.data(query, {"ids": sorted(old_ids)})["nodes"] == [None, None]
    count = "query($id: ID!) { product(id: $id) { variantsCount { count } } }"
    assert sandbox.data(count, {"id": after["id"]})["product"]["variantsCount"]["count"] == 2


def test_an_option_without_id_is_a_new_option_and_the_unlisted_one_is_deleted(
    sandbox: SandboxSession,
) -> None:
    _ok(sandbox, product_line("opt", ("1", "2")))
    before = _read(sandbox, "opt")
    old_option = before["options"][0]["id"]
    _ok(sandbox, product_line("opt", ("1", "2")))  # same name, no id: a new option
    after = _read(sandbox, "opt")
    assert after["options"][0]["name"] == "SKU" and after["options"][0]["id"] != old_option
    assert sandbox.data("query($id: ID!) { node(id: $id) { id } }", {"id": old_option}) == {
        "node": None
    }
    # Naming the deleted option by id now fails; naming the current one by id keeps it.
    stale = _with_ids(product_line("opt", ("1",)), after)
    stale["input"]["productOptions"][0]["id"] = old_option
    assert set(_codes(_set(sandbox, stale))) == {"OPTION_DOES_NOT_EXIST"}
    _ok(sandbox, _with_ids(product_line("opt", ("1",)), after))
    assert _read(sandbox, "opt")["options"][0]["id"] == after["options"][0]["id"]


def test_omitted_fields_stay_as_they_are(sandbox: SandboxSession) -> None:
    line = product_line("keep", ("1", "2"), files=[_file("a.jpg")])
    line["input"]["vendor"] = "Acme"
    _ok(sandbox, line)
    before = _settled(sandbox, "keep")
    _ok(sandbox, _update("keep", title="Renamed"))
    after = _read(sandbox, "keep")
    assert after["title"] == "Renamed"
    for field in ("vendor", "options", "variants", "media", "id"):
        assert after[field] == before[field], field
    _ok(sandbox, _update("keep", files=[{"id": before["media"]["nodes"][0]["id"]}]))
    assert _read(sandbox, "keep")["title"] == "Renamed"


def test_files_are_replaced_existing_kept_by_id_unlisted_deleted_with_their_variant_links(
    sandbox: SandboxSession,
) -> None:
    a, b = _file("a.jpg"), _file("b.jpg")
    line = product_line("photos", ("1",), files=[a, b])
    line["input"]["variants"][0]["file"] = {"originalSource": b["originalSource"]}
    _ok(sandbox, line)
    before = _read(sandbox, "photos")
    media_a, media_b = (m["id"] for m in before["media"]["nodes"])
    assert before["variants"]["nodes"][0]["media"]["nodes"] == [{"id": media_b}]

    files = [_file("c.jpg"), {"id": media_a, "alt": "new alt"}]
    _ok(sandbox, _update("photos", files=files))
    after = _read(sandbox, "photos")
    media = after["media"]["nodes"]
    assert [m["alt"] for m in media] == ["c.jpg", "new alt"]
    assert media[1]["id"] == media_a and media_b not in {m["id"] for m in media}
    assert after["variants"]["nodes"][0]["media"]["nodes"] == []
    missing = sandbox.data("query($id: ID!) { node(id: $id) { id } }", {"id": media_b})
    assert missing["node"] is None


def test_resent_original_source_creates_a_second_media_with_a_unique_file_name(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    source = image_url("827749-1a-1.jpg")
    first = {"originalSource": source, "alt": "front", "contentType": "IMAGE"}
    _ok(sandbox, product_line("twice", files=[first]))
    media_id = _read(sandbox, "twice")["media"]["nodes"][0]["id"]
    _ok(sandbox, _update("twice", files=[{"id": media_id}, first]))
    media = wait_for(
        lambda: _read(sandbox, "twice")["media"]["nodes"],
        lambda nodes: all(m["status"] == "READY" for m in nodes),
    )
    assert len(media) == 2 and media[0]["id"] == media_id and media[1]["id"] != media_id
    names = [m["image"]["url"].split("?")[0].rsplit("/", 1)[1] for m in media]
    assert names[0] == "827749-1a-1.jpg"
    assert names[1].startswith("827749-1a-1_") and names[1].endswith(".jpg")


def test_raise_error_on_a_file_name_clash_fails_the_new_media(sandbox: SandboxSession) -> None:
    _ok(sandbox, product_line("clash", files=[_file("a.jpg", filename="same.jpg")]))
    media_id = _read(sandbox, "clash")["media"]["nodes"][0]["id"]
    clashing = _file("b.jpg", filename="same.jpg", duplicateResolutionMode="RAISE_ERROR")
    _ok(sandbox, _update("clash", files=[{"id": media_id}, clashing]))
    new = _read(sandbox, "clash")["media"]["nodes"][1]
    assert new["status"] == "FAILED"
    assert new["mediaErrors"] == [{"code": "DUPLICATE_FILENAME_ERROR"}]


def test_a_call_with_user_errors_changes_nothing(sandbox: SandboxSession) -> None:
    _ok(sandbox, product_line("atomic", ("1", "2"), files=[_file("a.jpg")]))
    before = _settled(sandbox, "atomic")
    line = product_line("atomic", ("1", "9"), files=[_file("b.jpg")])
    line["input"]["title"] = "Should not stick"
    line["input"]["variants"][1]["optionValues"][0]["name"] = "not-a-value"
    payload = _set(sandbox, line)
    assert payload["product"] is None
    assert _codes(payload) == ["OPTION_VALUE_DOES_NOT_EXIST"]
    assert payload["userErrors"][0]["field"] == [
        "input",
        "variants",
        "1",
        "optionValues",
        "0",
        "name",
    ]
    assert _read(sandbox, "atomic") == before


def test_options_and_variants_are_checked_against_each_other(sandbox: SandboxSession) -> None:
    base = product_line("opts", ("1", "2"))
    cases: list[tuple[str, Any]] = []
    unknown_option = copy.deepcopy(base)
    unknown_option["input"]["variants"][0]["optionValues"][0]["optionName"] = "Colour"
    cases.append(("OPTION_DOES_NOT_EXIST", unknown_option))
    duplicate_variant = copy.deepcopy(base)
    duplicate_variant["input"]["variants"][1]["optionValues"][0]["name"] = "1"
    cases.append(("INVALID_VARIANT", duplicate_variant))
    no_variants = copy.deepcopy(base)
    del no_variants["input"]["variants"]
    cases.append(("VARIANTS_INPUT_MISSING", no_variants))
    no_options = copy.deepcopy(base)
    del no_options["input"]["productOptions"]
    cases.append(("PRODUCT_OPTIONS_INPUT_MISSING", no_options))
    too_many = copy.deepcopy(base)
    too_many["input"]["productOptions"] *= 4
    cases.append(("OPTIONS_OVER_LIMIT", too_many))
    same_name = copy.deepcopy(base)
    same_name["input"]["productOptions"] *= 2
    cases.append(("DUPLICATED_OPTION_NAME", same_name))
    for code, variables in cases:
        assert code in _codes(_set(sandbox, variables)), code
    assert _read(sandbox, "opts") is None


def test_identifier_rules(sandbox: SandboxSession) -> None:
    product_id = _ok(sandbox, product_line("first"))["id"]
    _ok(sandbox, product_line("second"))
    missing = {"identifier": {"id": "gid://shopify/Product/42"}, "input": {"title": "x"}}
    assert _codes(_set(sandbox, missing)) == ["PRODUCT_DOES_NOT_EXIST"]
    mismatch = _update("first", handle="other")
    assert _codes(_set(sandbox, mismatch)) == ["INPUT_MISMATCH"]
    both = _update("first", id=product_id)
    assert _codes(_set(sandbox, both)) == ["ID_NOT_ALLOWED"]
    taken = {"identifier": {"id": product_id}, "input": {"handle": "second"}}
    assert _codes(_set(sandbox, taken)) == ["HANDLE_NOT_UNIQUE"]
    renamed = {"identifier": {"id": product_id}, "input": {"handle": "first-renamed"}}
    assert _ok(sandbox, renamed)["handle"] == "first-renamed"


def test_file_ids_must_belong_to_the_product_and_variant_files_to_files(
    sandbox: SandboxSession,
) -> None:
    _ok(sandbox, product_line("one", files=[_file("a.jpg")]))
    other_media = _read(sandbox, "one")["media"]["nodes"][0]["id"]
    _ok(sandbox, product_line("two"))
    payload = _set(sandbox, _update("two", files=[{"id": other_media}]))
    assert _codes(payload) == ["INVALID_INPUT"]
    assert payload["userErrors"][0]["field"] == ["input", "files", "0", "id"]
    line = product_line("two")
    line["input"]["variants"][0]["file"] = _file("z.jpg")
    assert _codes(_set(sandbox, line)) == ["INVALID_INPUT"]


def test_fields_the_sandbox_does_not_model_are_refused_not_ignored(
    sandbox: SandboxSession,
) -> None:
    line = product_line("meta")
    line["input"]["metafields"] = [{"namespace": "a", "key": "b", "type": "x", "value": "c"}]
    payload = _set(sandbox, line)
    assert _codes(payload) == ["INVALID_INPUT"]
    assert "not emulated" in payload["userErrors"][0]["message"]


def test_asynchronous_mode_is_refused_outside_bulk_and_ignored_inside(
    sandbox: SandboxSession,
) -> None:
    document = PRODUCT_SET.replace("synchronous: true", "synchronous: false")
    assert _codes(sandbox.data(document, product_line("async"))["productSet"]) == ["INVALID_INPUT"]
    run = sandbox.run_bulk_mutation(document, [product_line("async")])
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    (result,) = sandbox.results(operation["url"])
    assert result["data"]["productSet"]["product"]["handle"] == "async"


def test_products_can_be_found_by_handle_and_by_sku(sandbox: SandboxSession) -> None:
    _ok(sandbox, product_line("lgd-1", ("827748", "827753")))
    _ok(sandbox, product_line("lgd-2", ("900001",)))
    query = "query($q: String) { products(first: 10, query: $q) { nodes { handle } } }"

    def handles(search: str) -> list[str]:
        return [n["handle"] for n in sandbox.data(query, {"q": search})["products"]["nodes"]]

    assert handles("sku:827753") == ["lgd-1"]
    assert handles("handle:lgd-2") == ["lgd-2"]
    assert handles("handle:lgd-1,lgd-2") == ["lgd-1", "lgd-2"]
    assert handles("sku:nope") == []


def test_options_and_variants_none_of_which_are_listed_again_are_all_replaced(
    sandbox: SandboxSession,
) -> None:
    line = product_line("renamed-option", ("1", "2"))
    line["input"]["productOptions"][0]["name"] = "Size"
    for variant in line["input"]["variants"]:
        variant["optionValues"][0]["optionName"] = "Size"
    before = _ok(sandbox, line)
    after = _ok(sandbox, product_line("renamed-option", ("1", "2")))
    read = sandbox.data(READ, {"handle": "renamed-option"})["productByIdentifier"]
    assert [(o["name"], o["values"]) for o in read["options"]] == [("SKU", ["1", "2"])]
    assert [v["sku"] for v in read["variants"]["nodes"]] == ["1", "2"]
    assert before["id"] == after["id"]
