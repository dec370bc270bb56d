"""The GraphQL documents bulkimg sends, the subset schema shipped with them, and Shopify's schema.

Tests marked ``schema`` need Shopify's full Admin schema from
``$BULKIMG_SHARED_DIR/shopify`` (default: ``<repo>/../shared/shopify``). Without it they skip,
except under ``CI=true``, where a missing schema is a failure.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    get_named_type,
    is_non_null_type,
    parse,
    print_ast,
    validate_schema,
    visit,
)
from graphql.utilities import get_default_value_ast

from bulkimg.shopify.documents import (
    ADMIN_API_VERSION,
    document_names,
    full_schema,
    load_document,
    search_in_bulk_query,
    subset_schema,
    validate_bulk_query,
    validate_operation,
)
from tests.helpers.graphql import SAMPLE_PRODUCT_SET_VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOPIFY_DIR = Path(os.environ.get("BULKIMG_SHARED_DIR", REPO_ROOT.parent / "shared")) / "shopify"
FULL_SCHEMA_FILES = (
    SHOPIFY_DIR / f"admin-{ADMIN_API_VERSION}.introspection.json.gz",
    SHOPIFY_DIR / f"admin-{ADMIN_API_VERSION}.graphql",
)

DOCUMENTS = [
    "bulk_operation",
    "bulk_operation_cancel",
    "bulk_operation_run_mutation",
    "bulk_operation_run_query",
    "bulk_operations",
    "export_products",
    "file_delete",
    "file_update",
    "product_by_handle",
    "product_media",
    "product_reorder_media",
    "product_set",
    "product_update_media",
    "shop",
    "staged_uploads_create",
    "variant_append_media",
    "variant_detach_media",
]
BULK_QUERIES = ["export_products"]

# Input types bulkimg sends: the subset must have every input field the real schema has.
SENT_INPUT_TYPES = [
    "ProductSetInput",
    "ProductSetIdentifiers",
    "ProductVariantSetInput",
    "FileSetInput",
    "OptionSetInput",
    "OptionValueSetInput",
    "VariantOptionValueInput",
    "StagedUploadInput",
    "ProductVariantAppendMediaInput",
    "ProductIdentifierInput",
    "ProductUpdateInput",
    "CreateMediaInput",
    "FileUpdateInput",
    "ProductVariantDetachMediaInput",
    "MoveInput",
]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def full_admin_schema() -> GraphQLSchema:
    """Shopify's full Admin schema, loaded once per test session."""
    for path in FULL_SCHEMA_FILES:
        if path.is_file():
            return full_schema(path)
    reason = (
        f"Shopify's full Admin schema {ADMIN_API_VERSION} not found in {SHOPIFY_DIR} "
        "(set BULKIMG_SHARED_DIR to the folder holding shopify/; see shopify/SOURCE.md)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(
    params=["subset", pytest.param("full", marks=pytest.mark.schema)], ids=["subset", "full"]
)
def schema(request: pytest.FixtureRequest) -> GraphQLSchema:
    """Each test using it runs against the shipped subset and against the full schema."""
    if request.param == "subset":
        return subset_schema()
    full: GraphQLSchema = request.getfixturevalue("full_admin_schema")
    return full


# --- helpers --------------------------------------------------------------------------------


def _is_connection(type_: GraphQLNamedType) -> bool:
    return (
        isinstance(type_, GraphQLObjectType)
        and "edges" in type_.fields
        and "pageInfo" in type_.fields
    )


def _connection_fields(schema: GraphQLSchema, document: str) -> list[str]:
    """Names of the connection fields a document selects (each occurrence counted)."""
    found: list[str] = []
    type_info = TypeInfo(schema)

    class Collect(Visitor):
        def enter_field(self, node: Any, *_: Any) -> None:
            field_def = type_info.get_field_def()
            if field_def is not None and _is_connection(get_named_type(field_def.type)):
                found.append(node.name.value)

    visit(parse(document), TypeInfoVisitor(type_info, Collect()))
    return found


def _default(value: Any) -> str | None:
    node = get_default_value_ast(value)
    return None if node is None else print_ast(node)


def _kind(type_: GraphQLNamedType) -> str:
    return type(type_).__name__


def _subset_types() -> list[GraphQLNamedType]:
    return [t for name, t in subset_schema().type_map.items() if not name.startswith("__")]


def _fields_of(type_: GraphQLNamedType | None) -> dict[str, GraphQLField]:
    if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
        return dict(type_.fields)
    return {}


# --- documents ------------------------------------------------------------------------------


def test_document_names_lists_every_document_but_not_the_schema() -> None:
    assert document_names() == sorted(DOCUMENTS)


def test_load_document_accepts_name_with_or_without_suffix() -> None:
    assert load_document("shop") == load_document("shop.graphql")
    assert "myshopifyDomain" in load_document("shop")


def test_load_document_rejects_unknown_name_and_lists_known_ones() -> None:
    with pytest.raises(LookupError, match=r"unknown GraphQL document 'nope'.*product_set"):
        load_document("nope")
    with pytest.raises(LookupError):
        load_document(f"schema.admin-{ADMIN_API_VERSION}")
    with pytest.raises(LookupError):
        load_document("../pyproject")


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_document_holds_one_named_operation(name: str) -> None:
    definitions = parse(load_document(name)).definitions
    assert len(definitions) == 1
    operation = definitions[0]
    assert getattr(operation, "name", None) is not None, f"{name}: the operation has no name"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_document_validates(schema: GraphQLSchema, name: str) -> None:
    assert validate_operation(schema, load_document(name)) == []


@pytest.mark.parametrize("name", BULK_QUERIES)
def test_bulk_query_documents_respect_bulk_query_limits(schema: GraphQLSchema, name: str) -> None:
    assert validate_bulk_query(schema, load_document(name)) == []


def test_a_searched_export_validates_and_cannot_be_reshaped_by_its_search(
    schema: GraphQLSchema,
) -> None:
    search = 'id:1 OR id:2") { edges { node { id } } } #'
    text = search_in_bulk_query("export_products", search)
    assert validate_bulk_query(schema, text) == []
    top = parse(text).definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    assert [(a.name.value, a.value.value) for a in top.arguments] == [("query", search)]
    assert search_in_bulk_query("export_products", None) == load_document("export_products")


def test_export_query_exports_product_media_and_variant_media() -> None:
    connections = _connection_fields(subset_schema(), load_document("export_products"))
    assert connections == ["products", "media", "variants", "media"]
    text = print_ast(parse(load_document("export_products")))  # without the comments
    for field in ("handle", "title", "sku", "alt", "status", "mediaContentType", "url"):
        assert field in text
    assert "first:" not in text  # bulk queries page by themselves


def test_product_set_document_has_exactly_one_connection_field(schema: GraphQLSchema) -> None:
    # A bulk mutation document may select at most one connection field.
    assert _connection_fields(schema, load_document("product_set")) == ["media"]


def test_product_set_requests_synchronous_mode() -> None:
    assert "synchronous: true" in load_document("product_set")


def test_document_selecting_unknown_field_is_rejected(schema: GraphQLSchema) -> None:
    errors = validate_operation(schema, "query Shop { shop { name colour } }")
    assert len(errors) == 1
    assert "Cannot query field 'colour' on type 'Shop'" in errors[0]


def test_document_with_syntax_error_is_rejected() -> None:
    errors = validate_operation(subset_schema(), "query Shop { shop { name }")
    assert errors and errors[0].startswith("syntax error:")


# --- variables ------------------------------------------------------------------------------


def test_sample_product_set_variables_validate(schema: GraphQLSchema) -> None:
    document = load_document("product_set")
    assert validate_operation(schema, document, SAMPLE_PRODUCT_SET_VARIABLES) == []


def _unknown_input_field(v: dict[str, Any]) -> None:
    v["input"]["colour"] = "gold"


def _wrong_enum_value(v: dict[str, Any]) -> None:
    v["input"]["files"][0]["contentType"] = "PICTURE"


def _missing_option_values(v: dict[str, Any]) -> None:
    del v["input"]["variants"][0]["optionValues"]


def _handle_and_id_in_one_of(v: dict[str, Any]) -> None:
    v["identifier"]["id"] = "gid://shopify/Product/1"


def _missing_input(v: dict[str, Any]) -> None:
    del v["input"]


@pytest.mark.parametrize(
    ("break_variables", "expected"),
    [
        (_unknown_input_field, "not to include unknown field 'colour'"),
        (_wrong_enum_value, "'PICTURE' does not exist in 'FileContentType' enum"),
        (_missing_option_values, "include required field 'optionValues'"),
        (_handle_and_id_in_one_of, "'ProductSetIdentifiers', exactly one field must be specified"),
        (_missing_input, "non-null type 'ProductSetInput!' to be provided"),
    ],
    ids=[
        "unknown-input-field",
        "wrong-enum",
        "missing-optionValues",
        "oneOf-two-fields",
        "no-input",
    ],
)
def test_bad_product_set_variables_are_rejected_naming_the_problem(
    schema: GraphQLSchema, break_variables: Callable[[dict[str, Any]], None], expected: str
) -> None:
    variables = copy.deepcopy(SAMPLE_PRODUCT_SET_VARIABLES)
    break_variables(variables)
    errors = validate_operation(schema, load_document("product_set"), variables)
    assert len(errors) == 1
    assert expected in errors[0]


def test_sample_staged_upload_and_append_media_variables_validate(schema: GraphQLSchema) -> None:
    staged = {
        "input": [
            {
                "resource": "BULK_MUTATION_VARIABLES",
                "filename": "product_set.jsonl",
                "mimeType": "text/jsonl",
                "httpMethod": "POST",
            }
        ]
    }
    append = {
        "productId": "gid://shopify/Product/1",
        "variantMedia": [
            {
                "variantId": "gid://shopify/ProductVariant/2",
                "mediaIds": ["gid://shopify/MediaImage/3"],
            }
        ],
    }
    assert validate_operation(schema, load_document("staged_uploads_create"), staged) == []
    assert validate_operation(schema, load_document("variant_append_media"), append) == []
    bad = {"input": [{"filename": "x.jsonl", "mimeType": "text/jsonl"}]}
    errors = validate_operation(schema, load_document("staged_uploads_create"), bad)
    assert any("required field 'resource'" in error for error in errors)


def test_variables_need_a_single_operation() -> None:
    document = "query A { shop { name } } query B { shop { name } }"
    errors = validate_operation(subset_schema(), document, {})
    assert errors == ["cannot check variables: the document holds 2 operations, not 1"]


# --- bulk query limits ----------------------------------------------------------------------


def test_bulk_query_nesting_two_levels_below_the_top_connection_is_allowed(
    schema: GraphQLSchema,
) -> None:
    query = "{ products { nodes { variants { nodes { media { edges { node { id } } } } } } } }"
    assert validate_bulk_query(schema, query) == []


@pytest.mark.schema
def test_bulk_query_nesting_three_levels_below_the_top_connection_is_rejected(
    full_admin_schema: GraphQLSchema,
) -> None:
    deeper = (
        "{ products { nodes { variants { nodes { product { variants { nodes { media { nodes { id }"
        " } } } } } } } } }"
    )
    errors = validate_bulk_query(full_admin_schema, deeper)
    assert errors == [
        "connection 'products.nodes.variants.nodes.product.variants.nodes.media' is nested 3 levels"
        " deep; at most 2 below the top-level connection are allowed"
    ]


def test_bulk_query_with_more_than_five_connections_is_rejected(schema: GraphQLSchema) -> None:
    media = "media { nodes { id } }"
    query = (
        f"{{ products {{ nodes {{ a: {media} b: {media} c: {media} d: {media} e: {media} }} }} }}"
    )
    errors = validate_bulk_query(schema, query)
    assert errors == [
        "a bulk query may select at most 5 connections, not 6: "
        "products, products.nodes.media, products.nodes.media, products.nodes.media, "
        "products.nodes.media, products.nodes.media"
    ]


def test_bulk_query_must_be_a_single_query_without_variables(schema: GraphQLSchema) -> None:
    mutation = load_document("bulk_operation_run_query")
    assert validate_bulk_query(schema, mutation) == ["a bulk query must be a query, not a mutation"]
    assert validate_bulk_query(schema, "{ shop { name } }") == [
        "a bulk query must select at least one connection field"
    ]
    two_roots = "{ shop { name } products { nodes { id } } }"
    assert validate_bulk_query(schema, two_roots) == [
        "a bulk query selects a single top-level field, not ['products', 'shop']"
    ]
    with_variables = "query Q($q: String) { products(query: $q) { nodes { id } } }"
    assert validate_bulk_query(schema, with_variables) == [
        "a bulk query takes no variables (bulkOperationRunQuery has no variables)"
    ]
    assert validate_bulk_query(schema, "{ products { nodes { id colour } } }") == [
        "Cannot query field 'colour' on type 'Product'. (at 1:25)"
    ]


BULK_TEST_SDL = """
interface Node { id: ID! }
type PageInfo { hasNextPage: Boolean! }
type Thing implements Node { id: ID! parts: PartConnection! groups: [Group!]! }
type Group { parts: PartConnection! }
type Part { id: ID! subparts: PartConnection! }
type PartEdge { node: Part! cursor: String! }
type PartConnection { edges: [PartEdge!]! nodes: [Part!]! pageInfo: PageInfo! }
type ThingEdge { node: Thing! cursor: String! }
type ThingConnection { edges: [ThingEdge!]! nodes: [Thing!]! pageInfo: PageInfo! }
type Query { node(id: ID!): Node things: ThingConnection! }
"""


def test_bulk_query_rejects_top_node_deep_nesting_and_connections_inside_lists() -> None:
    schema = build_schema(BULK_TEST_SDL)
    assert validate_bulk_query(schema, "{ things { nodes { id parts { nodes { id } } } } }") == []
    assert validate_bulk_query(
        schema, "{ node(id: 1) { ... on Thing { parts { nodes { id } } } } }"
    ) == ["the top-level field 'node' cannot be used in a bulk query"]
    in_list = "{ things { edges { node { groups { parts { nodes { id } } } } } } }"
    assert validate_bulk_query(schema, in_list) == [
        "connection 'things.edges.node.groups.parts' is inside a list field, which bulk queries "
        "do not support"
    ]
    three_levels = (
        "{ things { nodes { parts { nodes { subparts { nodes { subparts { nodes { id } } } } } }"
        " } } }"
    )
    assert validate_bulk_query(schema, three_levels) == [
        "connection 'things.nodes.parts.nodes.subparts.nodes.subparts' is nested 3 levels deep; "
        "at most 2 below the top-level connection are allowed"
    ]
    fragments = (
        "query Q { things { ...T } } fragment T on ThingConnection { nodes { ...P } }"
        " fragment P on Thing { parts { nodes { id } } }"
    )
    assert validate_bulk_query(schema, fragments) == []


# --- the subset schema against the full one -------------------------------------------------


def test_subset_schema_is_a_valid_schema_named_for_the_pinned_version() -> None:
    schema = subset_schema()
    assert validate_schema(schema) == []
    assert schema.query_type is not None and schema.query_type.name == "QueryRoot"
    assert schema.mutation_type is not None and schema.mutation_type.name == "Mutation"
    shipped = Path(__file__).resolve().parents[2] / "bulkimg" / "documents"
    assert (shipped / f"schema.admin-{ADMIN_API_VERSION}.graphql").is_file()


def test_subset_keeps_one_of_on_identifier_inputs() -> None:
    for name in ("ProductSetIdentifiers", "ProductIdentifierInput"):
        type_ = subset_schema().get_type(name)
        assert isinstance(type_, GraphQLInputObjectType) and type_.is_one_of, name


def test_every_subset_type_is_reachable_from_the_root_fields() -> None:
    schema = subset_schema()
    seen: set[str] = set()
    todo: list[GraphQLNamedType] = [t for t in (schema.query_type, schema.mutation_type) if t]
    node = schema.get_type("Node")
    assert node is not None
    todo.append(node)  # kept for the sandbox shop's global ids
    while todo:
        type_ = todo.pop()
        if type_.name in seen:
            continue
        seen.add(type_.name)
        for field in _fields_of(type_).values():
            todo.append(get_named_type(field.type))
            todo.extend(get_named_type(arg.type) for arg in field.args.values())
        if isinstance(type_, GraphQLInputObjectType):
            todo.extend(get_named_type(f.type) for f in type_.fields.values())
        if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
            todo.extend(schema.get_possible_types(type_))
    unreachable = {t.name for t in _subset_types()} - seen - {"String", "Boolean"}
    assert not unreachable


@pytest.mark.schema
def test_subset_root_types_match_full(full_admin_schema: GraphQLSchema) -> None:
    subset = subset_schema()
    assert full_admin_schema.query_type is not None and subset.query_type is not None
    assert full_admin_schema.mutation_type is not None and subset.mutation_type is not None
    assert subset.query_type.name == full_admin_schema.query_type.name
    assert subset.mutation_type.name == full_admin_schema.mutation_type.name


@pytest.mark.schema
def test_every_subset_type_exists_in_full_with_the_same_kind(
    full_admin_schema: GraphQLSchema,
) -> None:
    problems = []
    for type_ in _subset_types():
        real = full_admin_schema.get_type(type_.name)
        if real is None:
            problems.append(f"{type_.name}: not in the full schema")
        elif _kind(real) != _kind(type_):
            problems.append(f"{type_.name}: {_kind(type_)} here, {_kind(real)} in full")
        elif (
            isinstance(type_, GraphQLScalarType)
            and isinstance(real, GraphQLScalarType)
            and type_.specified_by_url != real.specified_by_url
        ):
            problems.append(f"{type_.name}: specifiedBy differs")
    assert problems == []


@pytest.mark.schema
def test_every_subset_field_and_argument_has_the_full_schema_type(
    full_admin_schema: GraphQLSchema,
) -> None:
    problems = []
    for type_ in _subset_types():
        real_fields = _fields_of(full_admin_schema.get_type(type_.name))
        for name, field in _fields_of(type_).items():
            real = real_fields.get(name)
            where = f"{type_.name}.{name}"
            if real is None:
                problems.append(f"{where}: not in the full schema")
                continue
            if str(field.type) != str(real.type):
                problems.append(f"{where}: {field.type} here, {real.type} in full")
            if field.deprecation_reason != real.deprecation_reason:
                problems.append(f"{where}: deprecation differs")
            for arg_name, arg in field.args.items():
                real_arg = real.args.get(arg_name)
                if real_arg is None:
                    problems.append(f"{where}({arg_name}): not in the full schema")
                elif str(arg.type) != str(real_arg.type):
                    problems.append(
                        f"{where}({arg_name}): {arg.type} here, {real_arg.type} in full"
                    )
                elif _default(arg) != _default(real_arg):
                    problems.append(f"{where}({arg_name}): default {_default(arg)} here")
    assert problems == []


@pytest.mark.schema
def test_every_subset_input_field_has_the_full_schema_type(
    full_admin_schema: GraphQLSchema,
) -> None:
    problems = []
    for type_ in _subset_types():
        if not isinstance(type_, GraphQLInputObjectType):
            continue
        real = full_admin_schema.get_type(type_.name)
        assert isinstance(real, GraphQLInputObjectType)
        if type_.is_one_of != real.is_one_of:
            problems.append(f"{type_.name}: @oneOf differs")
        for name, field in type_.fields.items():
            real_field = real.fields.get(name)
            if real_field is None:
                problems.append(f"{type_.name}.{name}: not in the full schema")
            elif str(field.type) != str(real_field.type):
                problems.append(
                    f"{type_.name}.{name}: {field.type} here, {real_field.type} in full"
                )
            elif _default(field) != _default(real_field):
                problems.append(f"{type_.name}.{name}: default {_default(field)} here")
    assert problems == []


@pytest.mark.schema
def test_subset_enums_have_exactly_the_full_schema_values(
    full_admin_schema: GraphQLSchema,
) -> None:
    problems = []
    for type_ in _subset_types():
        if isinstance(type_, GraphQLEnumType):
            real = full_admin_schema.get_type(type_.name)
            assert isinstance(real, GraphQLEnumType)
            if unknown := set(type_.values) - set(real.values):
                problems.append(f"{type_.name}: {sorted(unknown)} not in the full schema")
            if missing := set(real.values) - set(type_.values):
                problems.append(f"{type_.name}: missing {sorted(missing)}")
    assert problems == []


@pytest.mark.schema
def test_subset_interfaces_are_implemented_as_in_full(full_admin_schema: GraphQLSchema) -> None:
    problems = []
    for type_ in _subset_types():
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            real = full_admin_schema.get_type(type_.name)
            assert isinstance(real, GraphQLObjectType | GraphQLInterfaceType)
            real_interfaces = {i.name for i in real.interfaces}
            subset_interface_names = {t.name for t in _subset_types()}
            for interface in type_.interfaces:
                if interface.name not in real_interfaces:
                    problems.append(f"{type_.name} does not implement {interface.name} in full")
            for name in real_interfaces & subset_interface_names:
                if name not in {i.name for i in type_.interfaces}:
                    problems.append(f"{type_.name} should implement {name}")
    assert problems == []


@pytest.mark.schema
def test_subset_has_every_required_argument_and_input_field_of_full(
    full_admin_schema: GraphQLSchema,
) -> None:
    problems = []
    for type_ in _subset_types():
        real = full_admin_schema.get_type(type_.name)
        real_fields = _fields_of(real)
        for name, field in _fields_of(type_).items():
            real_field_def = real_fields.get(name)
            if real_field_def is None:
                continue  # an unknown field: reported by the field-type test
            for arg_name, arg in real_field_def.args.items():
                required = is_non_null_type(arg.type) and _default(arg) is None
                if required and arg_name not in field.args:
                    problems.append(f"{type_.name}.{name}({arg_name}) is required in full")
        if isinstance(type_, GraphQLInputObjectType) and isinstance(real, GraphQLInputObjectType):
            for name, real_field in real.fields.items():
                required = is_non_null_type(real_field.type) and _default(real_field) is None
                if required and name not in type_.fields:
                    problems.append(f"{type_.name}.{name} is required in full")
    assert problems == []


@pytest.mark.schema
@pytest.mark.parametrize("name", SENT_INPUT_TYPES)
def test_sent_input_types_have_all_input_fields_of_full(
    full_admin_schema: GraphQLSchema, name: str
) -> None:
    subset_type = subset_schema().get_type(name)
    real = full_admin_schema.get_type(name)
    assert isinstance(subset_type, GraphQLInputObjectType)
    assert isinstance(real, GraphQLInputObjectType)
    assert sorted(subset_type.fields) == sorted(real.fields)


@pytest.mark.schema
def test_every_input_type_in_subset_is_complete(full_admin_schema: GraphQLSchema) -> None:
    # Stronger than the list above: any input type reachable from what we send is complete too,
    # so variable validation against the subset is exactly as strict as against the real schema.
    incomplete = []
    for type_ in _subset_types():
        if isinstance(type_, GraphQLInputObjectType):
            real = full_admin_schema.get_type(type_.name)
            assert isinstance(real, GraphQLInputObjectType)
            if missing := sorted(set(real.fields) - set(type_.fields)):
                incomplete.append(f"{type_.name}: missing {missing}")
    assert incomplete == []
