"""How the shop model looks through GraphQL: object views, connections and the field resolver.

A view is a dict keyed by GraphQL field names, plus ``__type`` (the GraphQL type, for interfaces
such as Node and Media) and ``__ref`` (the model object, for fields computed on demand: nested
connections, signed URLs). A field that is neither in the view nor computed is not emulated: the
request gets an error saying so instead of a silent null.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypeVar, cast
from urllib.parse import quote

from graphql import GraphQLAbstractType, GraphQLEnumType, GraphQLError, GraphQLResolveInfo

from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.gids import SHOP_NUMBER, format_gid
from bulkimg.sandbox.signing import UrlSigner
from bulkimg.sandbox.store import (
    BulkOperation,
    Media,
    Metafield,
    Product,
    ProductOption,
    Store,
    VariantRow,
)
from bulkimg.statuses import BulkOperationStatus, MediaStatus

if TYPE_CHECKING:
    from bulkimg.sandbox.bulk import BulkOperationWorker
    from bulkimg.sandbox.media import MediaWorker

View = dict[str, object]
Args = Mapping[str, object]
T = TypeVar("T")

MAX_PAGE: Final = 250
CDN: Final = "https://cdn.sandbox.test/s/files/1/0681/2345/6789/files"
RESULTS_PATH: Final = "/sandbox-storage/results"


@dataclass(frozen=True, slots=True)
class Services:
    """The parts of one shop a request needs."""

    config: SandboxConfig
    store: Store
    signer: UrlSigner
    media: MediaWorker
    bulk: BulkOperationWorker


@dataclass(frozen=True, slots=True)
class Context:
    """The GraphQL context of one request (or one bulk line / bulk query)."""

    services: Services
    base_url: str
    bulk_query: bool = False
    """Connections return every item, without first/last (bulkOperationRunQuery)."""
    bulk_mutation: bool = False
    """A line of a bulk mutation (productSet then always runs synchronously)."""

    @property
    def store(self) -> Store:
        return self.services.store

    def signed_result(self, path: str, ended_at: float | None) -> str | None:
        """``path`` signed until ``result_url_lifetime`` after the operation ended (a fresh
        query does not renew it); None once that time has passed."""
        expires_at = (ended_at or time.time()) + self.services.config.result_url_lifetime
        if expires_at <= time.time():
            return None
        return self.base_url + self.services.signer.sign_until(path, expires_at)


Info = GraphQLResolveInfo[Context]


def bad_request(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_REQUEST"})


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- connections ----------------------------------------------------------------------------


def _cursor(key: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"last_id": key}).encode()).decode()


def _cursor_key(cursor: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["last_id"])
    except (ValueError, KeyError, TypeError):
        raise bad_request(f"Invalid cursor {cursor!r}") from None


def connection(
    ctx: Context, items: Sequence[T], view: Callable[[T], View], key: Callable[[T], int], args: Args
) -> View:
    """A Relay connection over ``items`` (already in order), paged as Shopify pages."""
    first, last = args.get("first"), args.get("last")
    if not ctx.bulk_query:
        if first is None and last is None:
            raise bad_request("you must provide one of first or last")
        for name, size in (("first", first), ("last", last)):
            if isinstance(size, int) and not 0 <= size <= MAX_PAGE:
                raise bad_request(f"The argument {name} must be between 0 and {MAX_PAGE}")
    seq = list(reversed(items)) if args.get("reverse") else list(items)
    keys = [key(item) for item in seq]
    start, end = 0, len(seq)
    if isinstance(args.get("after"), str):
        start = _position(keys, cast(str, args["after"])) + 1
    if isinstance(args.get("before"), str):
        end = _position(keys, cast(str, args["before"]))
    window = list(range(start, max(start, end)))
    if not ctx.bulk_query:
        if isinstance(first, int):
            window = window[:first]
        if isinstance(last, int):
            window = window[-last:] if last else []
    edges = [{"cursor": _cursor(keys[i]), "node": view(seq[i])} for i in window]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] < len(seq) - 1,
            "hasPreviousPage": bool(window) and window[0] > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _position(keys: list[int], cursor: str) -> int:
    wanted = _cursor_key(cursor)
    if wanted not in keys:
        raise bad_request(f"Invalid cursor {cursor!r}")
    return keys.index(wanted)


# --- object views ---------------------------------------------------------------------------


def shop_view(config: SandboxConfig) -> View:
    return {
        "__type": "Shop",
        "id": format_gid("Shop", SHOP_NUMBER),
        "name": config.shop_name,
        "myshopifyDomain": config.shop_domain,
        "url": f"https://{config.shop_domain}",
    }


def product_view(product: Product) -> View:
    return {
        "__type": "Product",
        "__ref": product,
        "id": format_gid("Product", product.id),
        "legacyResourceId": str(product.id),
        "handle": product.handle,
        "title": product.title,
        "status": product.status,
        "vendor": product.vendor,
        "productType": product.product_type,
        "descriptionHtml": product.description_html,
        "tags": list(product.tags),
        "createdAt": iso(product.created_at),
        "updatedAt": iso(product.updated_at),
    }


def option_view(option: ProductOption) -> View:
    return {
        "__type": "ProductOption",
        "id": format_gid("ProductOption", option.id),
        "name": option.name,
        "position": option.position,
        "values": list(option.values),
    }


def variant_view(variant: VariantRow) -> View:
    title = " / ".join(value for _, value in variant.selected) or "Default Title"
    return {
        "__type": "ProductVariant",
        "__ref": variant,
        "id": format_gid("ProductVariant", variant.id),
        "legacyResourceId": str(variant.id),
        "sku": variant.sku,
        "title": title,
        "price": variant.price,
        "compareAtPrice": variant.compare_at_price,
        "barcode": variant.barcode,
        "position": variant.position,
        "selectedOptions": [{"name": name, "value": value} for name, value in variant.selected],
        "createdAt": iso(variant.created_at),
        "updatedAt": iso(variant.updated_at),
    }


def media_view(media: Media) -> View:
    ready = media.status is MediaStatus.READY
    image: View | None = None
    if ready:
        image = {
            "__type": "Image",
            "__ref": media,
            "width": media.width,
            "height": media.height,
            "altText": media.alt,
        }
    return {
        "__type": "MediaImage",
        "__ref": media,
        "id": format_gid("MediaImage", media.id),
        "alt": media.alt,
        "status": media.status.value,
        "fileStatus": media.status.value,
        "mediaContentType": "IMAGE",
        "image": image,
        "mimeType": media.mime_type,
        "mediaWarnings": [],
        "createdAt": iso(media.created_at),
        "updatedAt": iso(media.updated_at),
    }


def bulk_view(operation: BulkOperation) -> View:
    completed = operation.status in (BulkOperationStatus.COMPLETED, BulkOperationStatus.EXPIRED)
    return {
        "__type": "BulkOperation",
        "__ref": operation,
        "id": format_gid("BulkOperation", operation.id),
        "status": operation.status.value,
        "errorCode": operation.error_code,
        "type": operation.type.value,
        "query": operation.query,
        "createdAt": iso(operation.created_at),
        "completedAt": iso(operation.completed_at) if completed else None,
        # UnsignedInt64 is serialized as a string, as Shopify does.
        "objectCount": str(operation.object_count),
        "rootObjectCount": str(operation.root_object_count),
        "fileSize": str(operation.file_size) if operation.file_size is not None else None,
    }


def cdn_url(media: Media) -> str:
    return f"{CDN}/{quote(media.filename)}?v={int(media.updated_at)}"


# --- fields computed on demand ------------------------------------------------------------

Relation = Callable[[object, Context, Args, Info], object]


def _product_media(ref: object, ctx: Context, args: Args, info: Info) -> object:
    if args.get("query") is not None or args.get("sortKey") not in (None, "POSITION"):
        raise bad_request("Product.media supports no query and only sortKey POSITION here")
    media = ctx.store.media_of_product(cast(Product, ref).id)
    return connection(ctx, media, media_view, lambda m: m.id, args)


def _product_variants(ref: object, ctx: Context, args: Args, info: Info) -> object:
    if args.get("sortKey") not in (None, "POSITION"):
        raise bad_request("Product.variants supports only sortKey POSITION here")
    variants = ctx.store.variants(cast(Product, ref).id)
    return connection(ctx, variants, variant_view, lambda v: v.id, args)


def _product_options(ref: object, ctx: Context, args: Args, info: Info) -> object:
    options = ctx.store.options(cast(Product, ref).id)
    first = args.get("first")
    return [option_view(o) for o in (options[:first] if isinstance(first, int) else options)]


def _product_featured_media(ref: object, ctx: Context, args: Args, info: Info) -> object:
    media = ctx.store.media_of_product(cast(Product, ref).id)
    return media_view(media[0]) if media else None


def _count(items: Callable[[Store, int], Sequence[object]]) -> Relation:
    def count(ref: object, ctx: Context, args: Args, info: Info) -> object:
        return {"count": len(items(ctx.store, cast(Product, ref).id)), "precision": "EXACT"}

    return count


def _variant_media(ref: object, ctx: Context, args: Args, info: Info) -> object:
    media_id = ctx.store.variant_media(cast(VariantRow, ref).id)
    found = ctx.store.media(media_id) if media_id is not None else None
    return connection(ctx, [found] if found else [], media_view, lambda m: m.id, args)


def _variant_product(ref: object, ctx: Context, args: Args, info: Info) -> object:
    product = ctx.store.product(cast(VariantRow, ref).product_id)
    return product_view(product) if product else None


def _media_errors(ref: object, ctx: Context, args: Args, info: Info) -> object:
    media = cast(Media, ref)
    if media.status is not MediaStatus.FAILED or media.error_code is None:
        return []
    codes = info.schema.get_type("MediaErrorCode")
    value = codes.values.get(media.error_code) if isinstance(codes, GraphQLEnumType) else None
    message = (value.description if value else None) or media.error_details or media.error_code
    return [{"code": media.error_code, "details": media.error_details, "message": message}]


def _image_url(ref: object, ctx: Context, args: Args, info: Info) -> object:
    if args.get("transform") is not None:
        raise bad_request("Image.url(transform:) is not emulated by the sandbox shop")
    return cdn_url(cast(Media, ref))


def _bulk_url(ref: object, ctx: Context, args: Args, info: Info) -> object:
    operation = cast(BulkOperation, ref)
    if operation.status is not BulkOperationStatus.COMPLETED or not operation.result_lines:
        return None  # EXPIRED included
    path = f"{RESULTS_PATH}/{operation.id}/bulk-{operation.id}.jsonl"
    return ctx.signed_result(path, operation.ended_at)


def _bulk_partial_url(ref: object, ctx: Context, args: Args, info: Info) -> object:
    operation = cast(BulkOperation, ref)
    if operation.status is not BulkOperationStatus.FAILED or not operation.result_lines:
        return None
    path = f"{RESULTS_PATH}/{operation.id}/bulk-{operation.id}-partial.jsonl"
    return ctx.signed_result(path, operation.ended_at)


def _media_original_source(ref: object, ctx: Context, args: Args, info: Info) -> object:
    """The stored original on the shop's CDN (never the source URL it was fetched from), and
    the bytes downloaded for the current content; null until READY."""
    media = cast(Media, ref)
    if media.status is not MediaStatus.READY:
        return None
    return {
        "__type": "MediaImageOriginalSource",
        "fileSize": ctx.store.media_file_size(media.id),
        "url": f"{CDN}/originals/{quote(media.filename)}?v={int(media.updated_at)}",
    }


RELATIONS: Final[dict[tuple[str, str], Relation]] = {
    ("Product", "media"): _product_media,
    ("Product", "variants"): _product_variants,
    ("Product", "options"): _product_options,
    ("Product", "featuredMedia"): _product_featured_media,
    ("Product", "mediaCount"): _count(lambda store, pid: store.media_of_product(pid)),
    ("Product", "variantsCount"): _count(lambda store, pid: store.variants(pid)),
    ("ProductVariant", "media"): _variant_media,
    ("ProductVariant", "product"): _variant_product,
    ("MediaImage", "mediaErrors"): _media_errors,
    ("MediaImage", "originalSource"): _media_original_source,
    ("Image", "url"): _image_url,
    ("BulkOperation", "url"): _bulk_url,
    ("BulkOperation", "partialDataUrl"): _bulk_partial_url,
}


# --- fields only a seeded shop fills (bulkimg.sandbox.seed): read-only ---------------------


def metafield_view(metafield: Metafield) -> View:
    json_value: object = metafield.value
    if not metafield.type.endswith("text_field"):
        try:
            json_value = json.loads(metafield.value)
        except ValueError:
            json_value = metafield.value
    return {
        "__type": "Metafield",
        "id": format_gid("Metafield", metafield.id),
        "namespace": metafield.namespace,
        "key": metafield.key,
        "type": metafield.type,
        "value": metafield.value,
        "jsonValue": json_value,
        "ownerType": "PRODUCT",
    }


def _product_metafields(ref: object, ctx: Context, args: Args, info: Info) -> object:
    found = ctx.store.metafields(cast(Product, ref).id)
    namespace, keys = args.get("namespace"), args.get("keys")
    if isinstance(namespace, str):
        found = [m for m in found if m.namespace == namespace]
    if isinstance(keys, list):
        wanted = {str(k) for k in keys}
        found = [m for m in found if f"{m.namespace}.{m.key}" in wanted]
    return connection(ctx, found, metafield_view, lambda m: m.id, args)


def _product_metafield(ref: object, ctx: Context, args: Args, info: Info) -> object:
    namespace, key = args.get("namespace"), args.get("key")
    for metafield in ctx.store.metafields(cast(Product, ref).id):
        if metafield.key == key and (namespace is None or metafield.namespace == namespace):
            return metafield_view(metafield)
    return None


def _variant_inventory_quantity(ref: object, ctx: Context, args: Args, info: Info) -> object:
    quantity = ctx.store.inventory_quantity(cast(VariantRow, ref).id)
    return 0 if quantity is None else quantity


RELATIONS.update(
    {
        ("Product", "metafields"): _product_metafields,
        ("Product", "metafield"): _product_metafield,
        ("ProductVariant", "inventoryQuantity"): _variant_inventory_quantity,
    }
)

RootField = Callable[[Context, Args, Info], object]


def make_field_resolver(
    query_fields: Mapping[str, RootField], mutation_fields: Mapping[str, RootField]
) -> Callable[..., object]:
    """The resolver of every field: root fields from the tables, then views and relations."""

    def resolve(source: object, info: Info, **args: object) -> object:
        ctx = info.context
        if source is None:
            is_mutation = info.parent_type is info.schema.mutation_type
            root = (mutation_fields if is_mutation else query_fields).get(info.field_name)
            if root is None:
                raise not_emulated(info)
            return root(ctx, args, info)
        if isinstance(source, dict):
            if info.field_name in source:
                return source[info.field_name]
            relation = RELATIONS.get((str(source.get("__type")), info.field_name))
            if relation is not None:
                return relation(source.get("__ref"), ctx, args, info)
        raise not_emulated(info)

    return resolve


def resolve_type(value: object, info: Info, abstract: GraphQLAbstractType) -> str:
    """The concrete GraphQL type of a view (for Node, Media and other interfaces)."""
    if isinstance(value, dict) and isinstance(value.get("__type"), str):
        return cast(str, value["__type"])
    raise GraphQLError(f"cannot resolve the type of a {abstract.name}")


def not_emulated(info: Info) -> GraphQLError:
    return GraphQLError(
        f"{info.parent_type.name}.{info.field_name} is not emulated by the sandbox shop",
        extensions={"code": "NOT_EMULATED"},
    )
