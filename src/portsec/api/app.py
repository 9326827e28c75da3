"""The Neutron v2.0 HTTP API: routes that map requests to service calls, errors to Neutron's body."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from portsec import faults
from portsec.api import identity as identity_config
from portsec.api import listing, openapi
from portsec.api.auth import Auth, NoAuth, TokenAuth
from portsec.domain import errors
from portsec.domain.model import Context
from portsec.service import networks, ports, subnets, views
from portsec.service.common import Limits
from portsec.store.database import Database

LOG = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024  # Neutron's max_request_body_size default is 114688; pairs x ports bulk needs more

EXTENSIONS = [
    ("port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00"),
    ("revision-if-match", "If-Match constraints based on revision_number",
     "Extension indicating that If-Match based on revision_number is supported.", "2016-12-11T00:00:00-00:00"),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
     "2016-09-12T10:00:00-00:00"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application",
     "2014-02-03T10:00:00-00:00"),
    ("port-mac-address-regenerate", "Neutron Port MAC address regenerate",
     "Network port MAC address regenerate", "2018-05-03T10:00:00-00:00"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.",
     "2016-09-09T09:09:09-09:09"),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled.",
     "2016-06-12T00:00:00-00:00"),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00"),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters.",
     "2018-03-21T10:00:00-00:00"),
]  # fmt: skip


@dataclass(frozen=True)
class _Resource:
    name: str
    plural: str
    service: Any
    view: Callable[[Any, Context], dict[str, Any]]
    not_found: Callable[[str], errors.NeutronError]


RESOURCES = [
    _Resource(
        "network", "networks", networks, lambda n, _ctx: views.network(n), lambda i: errors.NetworkNotFound(net_id=i)
    ),
    _Resource(
        "subnet", "subnets", subnets, lambda s, _ctx: views.subnet(s), lambda i: errors.SubnetNotFound(subnet_id=i)
    ),
    _Resource("port", "ports", ports, views.port, lambda i: errors.PortNotFound(port_id=i)),
]


def _no_nul(r: _Resource, request: Request, item_id: str | None = None) -> None:
    """No id holds a NUL and no column can compare with one (PostgreSQL refuses it): answer before the store."""
    if item_id is not None and "\x00" in item_id:
        raise r.not_found(item_id)
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise errors.HTTPBadRequest(f"Invalid input for {key!r}: a NUL character is not allowed")


def _if_match(header: str | None) -> int | None:
    """``If-Match: revision_number=N`` (quoted or not); weak and other tags are ignored."""
    if not header:
        return None
    tags = [t.strip() for t in header.split(",")] if header.count('"') >= 2 else [header.strip()]
    revisions = [t.strip('"') for t in tags if not t.startswith("W/") and t.strip('"').startswith("revision_number=")]
    if len(revisions) > 1:
        raise errors.BadRequest(resource="if-match", msg="Multiple revision_number etags are not supported.")
    if not revisions:
        return None
    try:
        return int(revisions[0].split("=", 1)[1])  # Neutron's int(): -1 parses, and then fails the comparison
    except ValueError:
        # The template adds the period (Neutron's own message for several etags keeps its two).
        raise errors.BadRequest(
            resource="if-match", msg="Revision number etag must be in the format of revision_number=<int>"
        ) from None


async def _body(request: Request) -> Any:
    """The JSON body, read no further than MAX_BODY bytes (Content-Length or not)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge()
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise errors.HTTPBadRequest("Body contains invalid data") from None


class _TooLarge(Exception):
    pass


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"NeutronError": {"type": kind, "message": message, "detail": ""}}, status_code=status)


def _only(body: dict[str, Any], key: str) -> None:
    """Nothing beside the resource: Neutron ignores other keys, portsec refuses them (a typo is not silent)."""
    extra = sorted(k for k in body if k != key)
    if extra:
        raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'")


def _project(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}


def create_app(db: Database, limits: Limits | None = None, auth: Auth | None = None) -> FastAPI:
    limits = limits or Limits()
    auth = auth or NoAuth()
    app = FastAPI(
        title="portsec: Neutron v2.0 networks, subnets and ports",
        version="2.0",
        description="OpenStack Networking (Neutron) v2.0 with allowed-address-pairs and port-security.",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(errors.NeutronError)
    async def neutron_error(_request: Request, err: errors.NeutronError) -> JSONResponse:
        return JSONResponse(faults.body_of(err), status_code=faults.status_of(err))

    @app.exception_handler(_TooLarge)
    async def too_large(_request: Request, _err: Exception) -> JSONResponse:
        return _error(413, "HTTPRequestEntityTooLarge", "Request is too large.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        # Unknown paths (404) and methods (405) answer in Neutron's body too.
        kind = {404: "HTTPNotFound", 405: "HTTPMethodNotAllowed"}.get(err.status_code, "HTTPError")
        message = "The resource could not be found." if err.status_code == 404 else str(err.detail)
        response = _error(err.status_code, kind, message)
        response.headers.update(err.headers or {})
        return response

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, err: Exception) -> JSONResponse:
        LOG.exception("request failed", exc_info=err)
        return _error(
            500, "HTTPInternalServerError", "Request Failed: internal server error while processing your request."
        )

    def extra(resource: _Resource) -> dict[str, Any]:
        return {"limits": limits} if resource.name == "port" else {}

    @app.get("/", tags=["discovery"], summary="API versions (no token needed)", responses={200: _JSON})
    def versions(request: Request) -> JSONResponse:
        href = str(request.base_url) + "v2.0/"
        network = {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}
        return JSONResponse({"versions": [network, *auth.root_versions(str(request.base_url))]})

    @app.get("/v2.0/", tags=["discovery"], summary="Resources of v2.0", responses={200: _JSON, **openapi.UNAUTHORIZED})
    def resources(request: Request) -> JSONResponse:
        auth.context(request)
        base = str(request.base_url) + "v2.0/"
        return JSONResponse(
            {
                "resources": [
                    {"name": r.name, "collection": r.plural, "links": [{"rel": "self", "href": base + r.plural}]}
                    for r in RESOURCES
                ]
            }
        )

    def extension(alias: str, name: str, description: str, updated: str) -> dict[str, Any]:
        return {"alias": alias, "name": name, "description": description, "updated": updated, "links": []}

    @app.get(
        "/v2.0/extensions",
        tags=["discovery"],
        summary="The extensions really implemented",
        responses={200: _JSON, **openapi.UNAUTHORIZED},
    )
    def list_extensions(request: Request) -> JSONResponse:
        auth.context(request)
        return JSONResponse({"extensions": [extension(*e) for e in EXTENSIONS]})

    @app.get(
        "/v2.0/extensions/{alias}",
        tags=["discovery"],
        summary="One extension",
        responses={200: _JSON, **openapi.errors(404)},
    )
    def show_extension(alias: str, request: Request) -> JSONResponse:
        auth.context(request)
        for e in EXTENSIONS:
            if e[0] == alias:
                return JSONResponse({"extension": extension(*e)})
        return _error(404, "HTTPNotFound", f"Extension {alias} not found.")

    for resource in RESOURCES:
        _routes(app, db, auth, resource, extra(resource))
    auth.install(app)

    def described() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                operation["responses"].pop("422", None)  # FastAPI's own validation: no route uses it
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            schemas.update(openapi.components())
            security = auth.openapi_security()
            schema["components"].update(security.get("components", {}))
            schema.update({k: v for k, v in security.items() if k != "components"})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = described  # type: ignore[method-assign]
    return app


def _routes(app: FastAPI, db: Database, auth: Auth, r: _Resource, extra: dict[str, Any]) -> None:
    base = f"/v2.0/{r.plural}"
    tags: list[str | Enum] = [r.plural]

    @app.get(
        base,
        name=f"list_{r.plural}",
        tags=tags,
        summary=f"List {r.plural}",
        openapi_extra={"parameters": openapi.list_parameters(r.name)},
        responses={200: openapi.many(r.name, r.plural), **openapi.errors(400, 404)},
    )
    def list_items(request: Request) -> JSONResponse:
        ctx = auth.context(request)
        _no_nul(r, request)
        items = request.query_params.multi_items()
        query, fields = listing.parse(r.name, items)
        with db.transaction(write=False) as tx:
            found = [r.view(x, ctx) for x in r.service.list_(tx, ctx, query)]
        body: dict[str, Any] = {r.plural: [_project(x, fields) for x in found]}
        page_links = listing.links(r.plural, str(request.url.replace(query="")), items, query, found)
        if page_links:
            body[f"{r.plural}_links"] = page_links
        return JSONResponse(body)

    @app.get(
        base + "/{item_id}",
        name=f"show_{r.name}",
        tags=tags,
        summary=f"Show a {r.name}",
        openapi_extra={"parameters": [openapi.FIELDS]},
        responses={200: openapi.one(r.name), **openapi.errors(400, 404)},
    )
    def show_item(item_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)
        _no_nul(r, request, item_id)
        fields = request.query_params.getlist("fields")
        with db.transaction(write=False) as tx:
            return JSONResponse({r.name: _project(r.view(r.service.get(tx, ctx, item_id), ctx), fields)})

    @app.post(
        base,
        status_code=201,
        name=f"create_{r.name}",
        tags=tags,
        summary=f"Create a {r.name}, or several at once with {{'{r.plural}': [...]}} (all or nothing)",
        openapi_extra=openapi.create_request(r.name, r.plural),
        responses={201: openapi.created(r.name, r.plural), **openapi.errors(400, 403, 404, 409, 413, 503)},
    )
    async def create_item(request: Request) -> JSONResponse:
        ctx = auth.context(request)
        body = await _body(request)
        if isinstance(body, dict) and r.plural in body and isinstance(body[r.plural], list):
            requests, bulk = body[r.plural], True
            if not requests:
                raise errors.HTTPBadRequest("Resources required")
        elif isinstance(body, dict) and r.name in body:
            requests, bulk = [body[r.name]], False
        else:
            raise errors.HTTPBadRequest(f"Unable to find '{r.name}' in request body")
        _only(body, r.plural if bulk else r.name)
        made = db.run(lambda tx: [r.service.create(tx, ctx, item, **extra) for item in requests])
        views = [r.view(item, ctx) for item in made]
        return JSONResponse({r.plural: views} if bulk else {r.name: views[0]}, status_code=201)

    @app.put(
        base + "/{item_id}",
        name=f"update_{r.name}",
        tags=tags,
        summary=f"Update a {r.name}",
        openapi_extra={**openapi.update_request(r.name), "parameters": [openapi.IF_MATCH]},
        responses={200: openapi.one(r.name), **openapi.errors(400, 403, 404, 409, 412, 413)},
    )
    async def update_item(item_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)
        _no_nul(r, request, item_id)
        body = await _body(request)
        if not isinstance(body, dict) or r.name not in body:
            raise errors.HTTPBadRequest(f"Unable to find '{r.name}' in request body")
        _only(body, r.name)
        revision = _if_match(request.headers.get("if-match"))
        item = db.run(lambda tx: r.service.update(tx, ctx, item_id, body[r.name], if_revision=revision, **extra))
        return JSONResponse({r.name: r.view(item, ctx)})

    @app.delete(
        base + "/{item_id}",
        status_code=204,
        name=f"delete_{r.name}",
        tags=tags,
        summary=f"Delete a {r.name}",
        openapi_extra={"parameters": [openapi.IF_MATCH]},
        responses={204: {"description": "Deleted"}, **openapi.errors(400, 403, 404, 409, 412)},
    )
    async def delete_item(item_id: str, request: Request) -> Response:
        ctx = auth.context(request)
        _no_nul(r, request, item_id)
        if await request.body():
            raise errors.HTTPBadRequest("Request body is not supported in DELETE.")
        revision = _if_match(request.headers.get("if-match"))
        db.run(lambda tx: r.service.delete(tx, ctx, item_id, if_revision=revision))
        return Response(status_code=204)


def from_environment() -> FastAPI:
    """The app for `portsec serve` workers: configuration comes through the environment."""
    db = Database(os.environ.get("PORTSEC_DATABASE_URL"))
    limits = Limits(int(os.environ.get("PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS", "10")))
    identity = identity_config.from_environment()
    return create_app(db, limits, TokenAuth(identity) if identity else NoAuth())
