"""The root fields the sandbox serves: the queries and mutations bulkimg uses, and their rules.

Each function takes the request context, the field's arguments (already coerced by graphql-core)
and the resolve info, and returns a view (see views.py). Root fields not listed here answer with
a "not emulated" error.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final, cast

from graphql import GraphQLError

from bulkimg.sandbox.bulk import mutation_problems
from bulkimg.sandbox.gids import SHOP_NUMBER, parse_gid, split_gid
from bulkimg.sandbox.media_mutations import (
    file_delete_field,
    file_update_field,
    job_query,
    product_reorder_media,
    product_update_field,
    product_variant_detach_media,
)
from bulkimg.sandbox.products import UserErrorRecord, product_set, variant_append_media
from bulkimg.sandbox.search import Term, compare, parse_query
from bulkimg.sandbox.staging import create_target
from bulkimg.sandbox.store import BulkOperation, Product
from bulkimg.sandbox.views import (
    Args,
    Context,
    Info,
    RootField,
    View,
    bad_request,
    bulk_view,
    connection,
    media_view,
    option_view,
    product_view,
    shop_view,
    variant_view,
)
from bulkimg.shopify.documents import validate_bulk_query
from bulkimg.statuses import BulkOperationStatus, BulkOperationType

BULK_UPLOAD_RESOURCE: Final = "BULK_MUTATION_VARIABLES"
MAX_INPUT_ARRAY: Final = 250
"""Shopify's limit on input arrays ("limits" page); checked on the fields listed in
docs/sandbox.md, not on ProductSetInput.variants (productSet documents 2,048 variants)."""
_PRODUCT_SEARCH_KEYS: Final = frozenset({"handle", "sku", "id", "title", "status"})
_BULK_SEARCH_KEYS: Final = frozenset({"status", "operation_type", "id", "created_at"})
_PRODUCT_SORT: Final[dict[str, Callable[[Product], tuple[str | float, int]]]] = {
    "ID": lambda p: (p.id, p.id),
    "TITLE": lambda p: (p.title.lower(), p.id),
    "CREATED_AT": lambda p: (p.created_at, p.id),
    "UPDATED_AT": lambda p: (p.updated_at, p.id),
}


def _check_array(value: object, where: str) -> None:
    """A top-level MAX_INPUT_SIZE_EXCEEDED error when ``value`` holds more than 250 items."""
    if isinstance(value, list) and len(value) > MAX_INPUT_ARRAY:
        raise GraphQLError(
            f"The input array size of {len(value)} is greater than the maximum allowed of"
            f" {MAX_INPUT_ARRAY}. ({where})",
            extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
        )


def _user_errors(errors: Sequence[UserErrorRecord]) -> list[View]:
    return [
        {"field": list(e.field) if e.field else None, "message": e.message, "code": e.code}
        for e in errors
    ]


def _error(field: Sequence[str] | None, message: str, code: str | None = None) -> View:
    return {"field": list(field) if field else None, "message": message, "code": code}


# --- queries ----------------------------------------------------------------------------------


def shop(ctx: Context, args: Args, info: Info) -> object:
    return shop_view(ctx.services.config)


def product(ctx: Context, args: Args, info: Info) -> object:
    number = parse_gid(cast(str, args["id"]), "Product")
    found = ctx.store.product(number) if number is not None else None
    return product_view(found) if found else None


def product_by_identifier(ctx: Context, args: Args, info: Info) -> object:
    identifier = cast(Mapping[str, object], args["identifier"])
    if identifier.get("customId") is not None:
        raise bad_request("productByIdentifier(identifier: {customId}) is not emulated")
    if isinstance(identifier.get("id"), str):
        return product(ctx, {"id": identifier["id"]}, info)
    found = ctx.store.product_by_handle(cast(str, identifier.get("handle")))
    return product_view(found) if found else None


def products(ctx: Context, args: Args, info: Info) -> object:
    if args.get("savedSearchId") is not None:
        raise bad_request("products(savedSearchId:) is not emulated")
    sort_key = cast(str, args.get("sortKey") or "ID")
    if sort_key not in _PRODUCT_SORT:
        raise bad_request(f"products(sortKey: {sort_key}) is not emulated")
    query = parse_query(cast(str | None, args.get("query")), _PRODUCT_SEARCH_KEYS)
    found = [
        p
        for p in ctx.store.products()
        if query.matches(functools.partial(_product_matches, ctx, p))
    ]
    found.sort(key=_PRODUCT_SORT[sort_key])
    return connection(ctx, found, product_view, lambda p: p.id, args)


def _product_matches(ctx: Context, product: Product, term: Term) -> bool:
    if term.key == "handle":
        return product.handle in term.values()
    if term.key == "sku":
        return any(product.id in ctx.store.product_ids_with_sku(sku) for sku in term.values())
    if term.key == "title":
        return product.title.lower() == term.value.lower()
    if term.key == "status":
        return product.status.lower() in [v.lower() for v in term.values()]
    return compare(product.id, term, _number(term.value, "Product"))


def _number(value: str, type_name: str) -> int:
    if value.isdigit():
        return int(value)
    number = parse_gid(value, type_name)
    if number is None:
        raise bad_request(f"{value!r} is not an id of a {type_name}")
    return number


def node(ctx: Context, args: Args, info: Info) -> object:
    type_name, number = split_gid(cast(str, args["id"]))
    store = ctx.store
    if type_name == "Product":
        found_product = store.product(number)
        return product_view(found_product) if found_product else None
    if type_name == "ProductVariant":
        variant = store.variant(number)
        return variant_view(variant) if variant else None
    if type_name == "MediaImage":
        media = store.media(number)
        return media_view(media) if media else None
    if type_name == "BulkOperation":
        operation = store.bulk_operation(number)
        return bulk_view(operation) if operation else None
    if type_name == "ProductOption":
        return _option(ctx, number)
    if type_name == "Shop" and number == SHOP_NUMBER:
        return shop_view(ctx.services.config)
    return None


def _option(ctx: Context, number: int) -> View | None:
    for found in ctx.store.products():
        for option in ctx.store.options(found.id):
            if option.id == number:
                return option_view(option)
    return None


def nodes(ctx: Context, args: Args, info: Info) -> object:
    return [node(ctx, {"id": gid}, info) for gid in cast(list[str], args["ids"])]


def bulk_operation(ctx: Context, args: Args, info: Info) -> object:
    number = parse_gid(cast(str, args["id"]), "BulkOperation")
    operation = ctx.store.bulk_operation(number) if number is not None else None
    return bulk_view(operation) if operation else None


def bulk_operations(ctx: Context, args: Args, info: Info) -> object:
    query = parse_query(cast(str | None, args.get("query")), _BULK_SEARCH_KEYS)
    found = [
        op
        for op in ctx.store.bulk_operations()
        if query.matches(functools.partial(_bulk_matches, op))
    ]
    if args.get("sortKey") == "COMPLETED_AT":
        found.sort(key=lambda op: (op.completed_at or 0.0, op.id))
    found.reverse()  # newest first unless reverse: true
    return connection(ctx, found, bulk_view, lambda op: op.id, args)


def _bulk_matches(operation: BulkOperation, term: Term) -> bool:
    if term.key == "status":
        return operation.status.value.lower() in [v.lower() for v in term.values()]
    if term.key == "operation_type":
        return operation.type.value.lower() in [v.lower() for v in term.values()]
    if term.key == "id":
        return compare(operation.id, term, _number(term.value, "BulkOperation"))
    try:
        wanted = datetime.fromisoformat(term.value.strip("'\"").replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"created_at needs an ISO 8601 time, not {term.value!r}") from None
    return compare(operation.created_at, term, wanted.timestamp())


def current_bulk_operation(ctx: Context, args: Args, info: Info) -> object:
    wanted = BulkOperationType(cast(str, args.get("type") or "QUERY"))
    mine = [op for op in ctx.store.bulk_operations() if op.type is wanted]
    return bulk_view(mine[-1]) if mine else None


QUERY_FIELDS: Final[dict[str, RootField]] = {
    "shop": shop,
    "product": product,
    "productByIdentifier": product_by_identifier,
    "products": products,
    "node": node,
    "nodes": nodes,
    "bulkOperation": bulk_operation,
    "bulkOperations": bulk_operations,
    "currentBulkOperation": current_bulk_operation,
    "job": job_query,
}


# --- mutations --------------------------------------------------------------------------------


def staged_uploads_create(ctx: Context, args: Args, info: Info) -> object:
    _check_array(args["input"], "input")
    targets: list[View] = []
    errors: list[View] = []
    services = ctx.services
    for i, item in enumerate(cast(list[Mapping[str, object]], args["input"])):
        where = ["input", str(i)]
        if item["resource"] != BULK_UPLOAD_RESOURCE:
            errors.append(_error([*where, "resource"], f"{item['resource']} is not emulated"))
        elif item.get("httpMethod") != "POST":
            errors.append(_error([*where, "httpMethod"], "Bulk mutation variables need POST"))
        elif item["mimeType"] != "text/jsonl":
            errors.append(_error([*where, "mimeType"], "Bulk mutation variables are text/jsonl"))
        else:
            target = create_target(
                services.store,
                services.signer,
                services.config,
                ctx.base_url,
                cast(str, item["filename"]),
                item["mimeType"],
            )
            parameters = [{"name": name, "value": value} for name, value in target.parameters]
            targets.append({"url": target.url, "resourceUrl": None, "parameters": parameters})
    return {
        "stagedTargets": [] if errors else targets,
        "userErrors": [{k: v for k, v in e.items() if k != "code"} for e in errors],
    }


def bulk_operation_run_mutation(ctx: Context, args: Args, info: Info) -> object:
    mutation = cast(str, args["mutation"])
    path = cast(str, args["stagedUploadPath"])
    client_identifier = cast(str | None, args.get("clientIdentifier"))
    if client_identifier is not None and not 10 <= len(client_identifier) <= 255:
        return _bulk_refused(["clientIdentifier"], "clientIdentifier must be 10-255 characters")
    problems = mutation_problems(info.schema, mutation)
    if problems:
        return _bulk_refused(["mutation"], "; ".join(problems), "INVALID_MUTATION")
    staged = ctx.store.staged(path)
    if staged is None or staged.uploaded_at is None:
        return _bulk_refused(
            ["stagedUploadPath"], "The JSONL file could not be found.", "NO_SUCH_FILE"
        )
    operation = ctx.services.bulk.submit(
        BulkOperationType.MUTATION, mutation, staged_key=path, client_identifier=client_identifier
    )
    if operation is None:
        return _limit_reached()
    return {"bulkOperation": bulk_view(operation), "userErrors": []}


def bulk_operation_run_query(ctx: Context, args: Args, info: Info) -> object:
    query = cast(str, args["query"])
    problems = validate_bulk_query(info.schema, query)
    if problems:
        return _bulk_refused(["query"], "; ".join(problems), "INVALID")
    operation = ctx.services.bulk.submit(
        BulkOperationType.QUERY, query, group_objects=bool(args.get("groupObjects"))
    )
    if operation is None:
        return _limit_reached()
    return {"bulkOperation": bulk_view(operation), "userErrors": []}


def _bulk_refused(field: list[str], message: str, code: str | None = None) -> View:
    return {"bulkOperation": None, "userErrors": [_error(field, message, code)]}


def _limit_reached() -> View:
    # BulkMutationErrorCode / BulkOperationUserErrorCode LIMIT_REACHED: "Bulk operations limit
    # reached. Please try again later." (OPERATION_IN_PROGRESS predates concurrent operations.)
    return _bulk_refused(
        [], "Bulk operations limit reached. Please try again later.", "LIMIT_REACHED"
    )


def bulk_operation_cancel(ctx: Context, args: Args, info: Info) -> object:
    number = parse_gid(cast(str, args["id"]), "BulkOperation")
    operation = ctx.store.bulk_operation(number) if number is not None else None
    if operation is None:
        return {
            "bulkOperation": None,
            "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
        }
    if operation.status not in (BulkOperationStatus.CREATED, BulkOperationStatus.RUNNING):
        message = f"A bulk operation cannot be canceled when it is {operation.status.lower()}"
        return {
            "bulkOperation": bulk_view(operation),
            "userErrors": [{"field": None, "message": message}],
        }
    canceled = ctx.services.bulk.cancel(operation.id) or operation
    return {"bulkOperation": bulk_view(canceled), "userErrors": []}


def product_set_field(ctx: Context, args: Args, info: Info) -> object:
    data = cast(Mapping[str, object], args["input"])
    _check_array(data.get("files"), "input.files")
    _check_array(data.get("tags"), "input.tags")
    options = data.get("productOptions")
    for i, option in enumerate(options if isinstance(options, list) else []):
        if isinstance(option, Mapping):
            _check_array(option.get("values"), f"input.productOptions.{i}.values")
    outcome = product_set(
        ctx.store,
        cast(Mapping[str, object], args["input"]),
        cast(Mapping[str, object] | None, args.get("identifier")),
        # In a bulk operation productSet always runs synchronously (its `synchronous` doc).
        synchronous=ctx.bulk_mutation or args.get("synchronous") is not False,
        now=time.time(),
        config=ctx.services.config,
    )
    ctx.services.media.enqueue(outcome.media_to_process)
    found = ctx.store.product(outcome.product_id) if outcome.product_id is not None else None
    return {
        "product": product_view(found) if found else None,
        "productSetOperation": None,
        "userErrors": _user_errors(outcome.errors),
    }


def product_variant_append_media(ctx: Context, args: Args, info: Info) -> object:
    pairs = cast(list[Mapping[str, object]], args["variantMedia"])
    _check_array(pairs, "variantMedia")
    for i, pair in enumerate(pairs):
        _check_array(pair.get("mediaIds"), f"variantMedia.{i}.mediaIds")
    outcome = variant_append_media(
        ctx.store,
        cast(str, args["productId"]),
        cast(list[Mapping[str, object]], args["variantMedia"]),
    )
    if outcome.product_id is None:
        return {
            "product": None,
            "productVariants": None,
            "userErrors": _user_errors(outcome.errors),
        }
    found = ctx.store.product(outcome.product_id)
    variants = [ctx.store.variant(v) for v in outcome.variant_ids]
    return {
        "product": product_view(found) if found else None,
        "productVariants": [variant_view(v) for v in variants if v is not None],
        "userErrors": [],
    }


MUTATION_FIELDS: Final[dict[str, RootField]] = {
    "stagedUploadsCreate": staged_uploads_create,
    "bulkOperationRunMutation": bulk_operation_run_mutation,
    "bulkOperationRunQuery": bulk_operation_run_query,
    "bulkOperationCancel": bulk_operation_cancel,
    "productSet": product_set_field,
    "productVariantAppendMedia": product_variant_append_media,
    "productUpdate": product_update_field,
    "fileUpdate": file_update_field,
    "fileDelete": file_delete_field,
    "productVariantDetachMedia": product_variant_detach_media,
    "productReorderMedia": product_reorder_media,
}
