"""The sandbox's HTTP surface (a werkzeug WSGI app): routing, auth, request parsing, faults.

Routes:
    POST   /admin/api/{version}/graphql.json        Admin GraphQL (X-Shopify-Access-Token)
    POST   /sandbox-storage/staged-uploads/          staged upload form POST (signed policy)
    GET    /sandbox-storage/results/{id}/{name}      bulk operation results (signed URL)
    GET|POST|DELETE /sandbox/faults                  fault rules (X-Shopify-Access-Token)
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, Protocol
from xml.sax.saxutils import escape

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import parse_options_header
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from bulkimg.redact import redact_url
from bulkimg.sandbox.faults import FaultRule, FaultRuleError, Route
from bulkimg.sandbox.signing import Verdict
from bulkimg.sandbox.staging import UPLOAD_PATH, receive_upload
from bulkimg.sandbox.views import RESULTS_PATH, Context
from bulkimg.shopify.documents import ADMIN_API_VERSION
from bulkimg.statuses import BulkOperationStatus

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from bulkimg.sandbox.config import SandboxConfig
    from bulkimg.sandbox.faults import FaultInjector
    from bulkimg.sandbox.graphql_api import Executor
    from bulkimg.sandbox.views import Services

log = logging.getLogger(__name__)

# Shopify's 401 message (not a secret).
INVALID_TOKEN: Final = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
)
_JSON: Final = "application/json; charset=utf-8"

_ROUTES = Map(
    [
        Rule("/admin/api/<version>/graphql.json", endpoint="graphql", methods=["POST"]),
        Rule(UPLOAD_PATH, endpoint="staged_upload", methods=["POST"]),
        Rule(
            f"{RESULTS_PATH}/<int:operation_id>/<name>", endpoint="result_download", methods=["GET"]
        ),
        Rule("/sandbox/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
    ],
    strict_slashes=False,
)


def _json(body: object, status: int = 200, headers: Headers | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type=_JSON)


def _xml_error(status: int, code: str, message: str) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?><Error>"
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(body, status=status, content_type="application/xml; charset=UTF-8")


class ShopParts(Protocol):
    """What the WSGI application serves from (a SandboxShop)."""

    @property
    def config(self) -> SandboxConfig: ...
    @property
    def faults(self) -> FaultInjector: ...
    @property
    def executor(self) -> Executor: ...
    @property
    def services(self) -> Services: ...


class SandboxApp:
    """The WSGI application of one SandboxShop (sandbox/shop.py)."""

    def __init__(self, shop: ShopParts) -> None:
        self._shop = shop
        self._handlers: dict[str, Callable[..., Response]] = {
            "graphql": self._graphql,
            "staged_upload": self._staged_upload,
            "result_download": self._result_download,
            "faults": self._faults,
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, values = _ROUTES.bind_to_environ(environ).match()
            response = self._handlers[endpoint](request, **values)
        except (NotFound, MethodNotAllowed) as exc:
            response = _json({"errors": "Not Found" if exc.code == 404 else exc.name}, exc.code)
        except HTTPException as exc:
            response = _json({"errors": exc.name}, exc.code or 400)
        except Exception:
            log.exception("sandbox: %s %s failed", request.method, redact_url(request.path))
            response = _json({"errors": "Internal Server Error"}, 500)
        return response(environ, start_response)

    def _fault(
        self, route: Route, request: Request, operation_name: str | None = None
    ) -> Response | FaultRule | None:
        """The response an active fault rule forces on this request, after its delay (a rule
        with ``user_error``: the rule, for a GraphQL answer)."""
        rule = self._shop.faults.match(route, operation_name=operation_name, url=request.url)
        if rule is None:
            return None
        if rule.delay:
            time.sleep(rule.delay)
        if rule.user_error is not None:
            return rule
        if rule.status is None:
            return None
        headers = Headers()
        if rule.status == 429:
            headers["Retry-After"] = str(rule.retry_after or 1)
        message = f"HTTP {rule.status} (sandbox fault injection)"
        if route == "graphql":
            return _json({"errors": message}, rule.status, headers)
        response = _xml_error(rule.status, "SandboxFault", message)
        response.headers.extend(headers)
        return response

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("X-Shopify-Access-Token", "")
        return hmac.compare_digest(given.encode(), self._shop.config.access_token.encode())

    def _context(self, request: Request) -> Context:
        return Context(self._shop.services, request.host_url.rstrip("/"))

    # --- routes -------------------------------------------------------------------------

    def _graphql(self, request: Request, version: str) -> Response:
        parsed = _graphql_body(request)
        executor = self._shop.executor
        name = executor.operation_name(parsed[0], parsed[2]) if parsed else None
        forced = self._fault("graphql", request, name)
        if isinstance(forced, FaultRule):
            return _json(_user_error_body(parsed, forced), 200)
        if forced is not None:
            return forced
        if version != ADMIN_API_VERSION:
            return _json({"errors": "Not Found"}, 404)
        if not self._authorized(request):
            return _json({"errors": INVALID_TOKEN}, 401)
        if parsed is None:
            return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        text, variables, operation_name = parsed
        token = self._shop.config.access_token
        body = executor.request(self._context(request), token, text, variables, operation_name)
        headers = Headers({"X-Shopify-API-Version": ADMIN_API_VERSION})
        return _json(body, 200, headers)

    def _staged_upload(self, request: Request) -> Response:
        forced = self._fault("staged_upload", request)
        if isinstance(forced, Response):
            return forced
        mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
        if mimetype != "multipart/form-data" or "boundary" not in options:
            return _xml_error(400, "InvalidArgument", "Expected a multipart/form-data POST.")
        shop = self._shop
        result = receive_upload(
            shop.services.store, shop.services.signer, request.stream, options["boundary"].encode()
        )
        if result.status != 201:
            return _xml_error(result.status, result.code, result.message)
        location = f"{request.host_url.rstrip('/')}{UPLOAD_PATH}{result.key}"
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><PostResponse>"
            f"<Location>{escape(location)}</Location><Bucket>sandbox-staged-uploads</Bucket>"
            f'<Key>{escape(result.key or "")}</Key><ETag>"{result.etag}"</ETag></PostResponse>'
        )
        return Response(body, status=201, content_type="application/xml; charset=UTF-8")

    def _result_download(self, request: Request, operation_id: int, name: str) -> Response:
        forced = self._fault("result_download", request)
        if isinstance(forced, Response):
            return forced
        verdict = self._shop.services.signer.verify(
            request.path, request.args.get("Expires"), request.args.get("Signature")
        )
        if verdict is Verdict.EXPIRED:
            return _xml_error(403, "ExpiredToken", "The provided token has expired.")
        if verdict is not Verdict.OK:
            return _xml_error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        store = self._shop.services.store
        operation = store.bulk_operation(operation_id)
        path = store.result_path(operation_id)
        if (
            operation is None
            or operation.status is BulkOperationStatus.RUNNING
            or not path.is_file()
        ):
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        file = path.open("rb")
        return Response(
            wrap_file(request.environ, file),
            content_type="application/jsonl",
            headers={"Content-Length": str(path.stat().st_size)},
            direct_passthrough=True,
        )

    def _faults(self, request: Request) -> Response:
        if not self._authorized(request):
            return _json({"errors": INVALID_TOKEN}, 401)
        faults = self._shop.faults
        if request.method == "DELETE":
            faults.clear()
        elif request.method == "POST":
            payload = request.get_json(silent=True)
            items = payload if isinstance(payload, list) else [payload]
            try:
                for item in items:
                    if not isinstance(item, dict):
                        raise FaultRuleError("a fault rule is a JSON object")
                    faults.add(FaultRule.from_json(item))
            except FaultRuleError as exc:
                return _json({"errors": str(exc)}, 400)
        return _json({"rules": [rule.to_json() for rule in faults.rules()]})


def _user_error_body(
    parsed: tuple[str, dict[str, object] | None, str | None] | None, rule: FaultRule
) -> dict[str, object]:
    """The answer of a mutation refused by a fault rule: one userError, other fields null."""
    error = {"field": None, "message": rule.user_error, "code": rule.user_error_code}
    try:
        document = parse(parsed[0] if parsed else "")
    except GraphQLError:
        return {"errors": [{"message": "fault rule: the request has no parsable document"}]}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = [o for o in operations if o.name and o.name.value == rule.operation_name]
    root = next(iter(named or operations)).selection_set.selections[0]
    assert isinstance(root, FieldNode) and root.selection_set is not None
    payload: dict[str, object] = {}
    for field in _fields(root):
        if field.name.value == "userErrors":
            payload[_key(field)] = [{_key(f): error.get(f.name.value) for f in _fields(field)}]
        else:
            payload[_key(field)] = None
    return {"data": {_key(root): payload}}


def _fields(node: FieldNode) -> list[FieldNode]:
    selections = node.selection_set.selections if node.selection_set else ()
    return [s for s in selections if isinstance(s, FieldNode)]


def _key(field: FieldNode) -> str:
    return (field.alias or field.name).value


def _graphql_body(request: Request) -> tuple[str, dict[str, object] | None, str | None] | None:
    """(query, variables, operationName) of a JSON or application/graphql request."""
    if request.mimetype == "application/graphql":
        return request.get_data(as_text=True), None, None
    try:
        payload = orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    variables = payload.get("variables")
    name = payload.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        return None
    return payload["query"], variables, name if isinstance(name, str) else None
