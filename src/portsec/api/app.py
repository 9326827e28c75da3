"""The Neutron v2.0 HTTP API: routes that map requests to service calls, errors to Neutron's body."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from portsec import faults
from portsec.api import agents as agent_routes
from portsec.api import identity as identity_config
from portsec.api import insight as insight_routes
from portsec.api import jsonbody, listing, openapi
from portsec.api import metrics as metrics_routes
from portsec.api import quotas as quota_routes
from portsec.api.auth import Auth, NoAuth, TokenAuth
from portsec.api.limits import MAX_BULK_ITEMS, BodyLimit
from portsec.domain import errors
from portsec.service import agents, quotas
from portsec.service.common import Limits
from portsec.service.registry import RESOURCES, Resource
from portsec.store.database import Database, Run, WouldWait

LOG = logging.getLogger(__name__)

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
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource.",
     "2017-07-12T00:00:00-00:00"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project",
     "2012-07-29T10:00:00-00:00"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project",
     "2017-02-10T10:00:00-00:00"),
    agent_routes.EXTENSION,
    insight_routes.EXTENSION,
]  # fmt: skip


def _no_nul(r: Resource, request: Request, item_id: str | None = None) -> None:
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
    """The JSON body; limits.BodyLimit, in front of every route, has bounded its size before it is read."""
    try:
        return jsonbody.loads(await request.body())
    except jsonbody.InvalidJSON as err:
        reason = f": {err.why}" if err.why else ""
        raise errors.HTTPBadRequest(f"Body contains invalid data{reason}") from None


R = TypeVar("R")


class DatabaseThreads:
    """Where handlers run their database work: worker threads, never the event loop.

    Reads and writes each get as many threads as the store keeps connections for them
    (Database.readers, .writers): no thread waits for a connection, writers waiting on a lock
    cannot hold up reads, and the default thread pool stays free for the handlers that need no
    database (discovery, identity). A request's deadline starts before it queues for a thread, so
    time in the queue counts towards its wait for the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._reads = anyio.CapacityLimiter(db.readers)
        self._writes = anyio.CapacityLimiter(db.writers)

    async def read(self, respond: Callable[[Run], R]) -> R:
        """``respond(run)`` in a reader thread, whose ``run(work)`` is its read transaction: its database
        calls, and its answer (views, JSON)."""
        run = partial(self.db.run, write=False, deadline=self.db.deadline())
        return await anyio.to_thread.run_sync(respond, run, limiter=self._reads)

    async def write(self, respond: Callable[[Run], R], at_once: bool = True) -> R:
        """``respond(run)``, whose ``run(work)`` is its write transaction: on the event loop when the
        database is free (Database.run_at_once: the work and nothing else, no thread hand-off, which
        costs a single write about as much as the write itself), else in a writer thread that may wait
        until the request's deadline. ``at_once=False`` (a bulk create: long work) goes to the thread."""
        deadline = self.db.deadline()
        if at_once:
            try:
                return respond(self.db.run_at_once)
            except WouldWait:
                pass  # rolled back: nothing of it stays
        return await anyio.to_thread.run_sync(respond, partial(self.db.run, deadline=deadline), limiter=self._writes)


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


def create_app(
    db: Database, limits: Limits | None = None, auth: Auth | None = None, agent_down_time: float | None = None
) -> FastAPI:
    """``agent_down_time``: seconds without a heartbeat before an agent shows ``alive: false`` (default 75)."""
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

    @app.exception_handler(errors.DatabaseBusy)
    async def database_busy(_request: Request, err: errors.DatabaseBusy) -> JSONResponse:
        # The request already waited db.wait seconds: come back after as long, not at once.
        retry_after = str(max(1, math.ceil(db.wait)))
        return JSONResponse(
            faults.body_of(err), status_code=faults.status_of(err), headers={"Retry-After": retry_after}
        )

    app.add_middleware(BodyLimit)  # every method and path: the body's size, before the route reads any of it
    metrics_routes.install(app)  # /metrics, and the count and latency of every request (413s of BodyLimit too)

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

    @app.get("/", tags=["discovery"], summary="API versions (no token needed)", responses={200: _JSON})
    def versions(request: Request) -> JSONResponse:
        href = str(request.base_url) + "v2.0/"
        network = {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}
        # Neutron's root lists v2.0 alone: clients (tempest) take the root's versions as the network API's.
        # Identity is discovered at /v3, where OS_AUTH_URL points.
        return JSONResponse({"versions": [network]})

    @app.get("/v2.0/", tags=["discovery"], summary="Resources of v2.0", responses={200: _JSON, **openapi.UNAUTHORIZED})
    def resources(request: Request) -> JSONResponse:
        auth.context(request)
        base = str(request.base_url) + "v2.0/"
        return JSONResponse(
            {
                "resources": [
                    {"name": r.name, "collection": r.plural, "links": [{"rel": "self", "href": base + r.plural}]}
                    for r in RESOURCES.values()
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

    threads = DatabaseThreads(db)
    for resource in RESOURCES.values():
        _routes(app, threads, auth, resource, limits)
    quota_routes.install(app, threads, auth, limits.quotas, _body)
    insight_routes.install(app, threads, auth, _body)
    down_time = agents.down_time_from_environment() if agent_down_time is None else agent_down_time
    agent_routes.install(app, threads, auth, _body, down_time)
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


def _routes(app: FastAPI, threads: DatabaseThreads, auth: Auth, r: Resource, limits: Limits) -> None:
    base = f"/v2.0/{r.plural}"
    tags: list[str | Enum] = [r.plural]

    @app.get(
        base,
        name=f"list_{r.plural}",
        tags=tags,
        summary=f"List {r.plural}",
        openapi_extra={"parameters": openapi.list_parameters(r.name)},
        responses={200: openapi.many(r.name, r.plural), **openapi.errors(400, 404, 503)},
    )
    async def list_items(request: Request) -> JSONResponse:
        def respond(run: Run) -> JSONResponse:
            # All of it in the thread, as when this handler was sync: auth may read its file, views are work.
            ctx = auth.context(request)
            _no_nul(r, request)
            items = request.query_params.multi_items()
            query, fields = listing.parse(r.name, items)
            found = run(lambda tx: [r.view(x, ctx) for x in r.service.list_(tx, ctx, query)])
            body: dict[str, Any] = {r.plural: [_project(x, fields) for x in found]}
            page_links = listing.links(r.plural, str(request.url.replace(query="")), items, query, found)
            if page_links:
                body[f"{r.plural}_links"] = page_links
            return JSONResponse(body)

        return await threads.read(respond)

    @app.get(
        base + "/{item_id}",
        name=f"show_{r.name}",
        tags=tags,
        summary=f"Show a {r.name}",
        openapi_extra={"parameters": [openapi.FIELDS]},
        responses={200: openapi.one(r.name), **openapi.errors(400, 404, 503)},
    )
    async def show_item(item_id: str, request: Request) -> JSONResponse:
        def respond(run: Run) -> JSONResponse:
            ctx = auth.context(request)
            _no_nul(r, request, item_id)
            fields = request.query_params.getlist("fields")
            item = run(lambda tx: r.view(r.service.get(tx, ctx, item_id), ctx))
            return JSONResponse({r.name: _project(item, fields)})

        return await threads.read(respond)

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
            if len(requests) > MAX_BULK_ITEMS:
                raise errors.HTTPBadRequest(f"A bulk request holds at most {MAX_BULK_ITEMS} {r.plural}")
        elif isinstance(body, dict) and r.name in body:
            requests, bulk = [body[r.name]], False
        else:
            raise errors.HTTPBadRequest(f"Unable to find '{r.name}' in request body")
        _only(body, r.plural if bulk else r.name)

        def respond(run: Run) -> JSONResponse:
            made = run(lambda tx: [r.service.create(tx, ctx, item, limits) for item in requests])
            views = [r.view(item, ctx) for item in made]
            return JSONResponse({r.plural: views} if bulk else {r.name: views[0]}, status_code=201)

        return await threads.write(respond, at_once=not bulk)

    @app.put(
        base + "/{item_id}",
        name=f"update_{r.name}",
        tags=tags,
        summary=f"Update a {r.name}",
        openapi_extra={**openapi.update_request(r.name), "parameters": [openapi.IF_MATCH]},
        responses={200: openapi.one(r.name), **openapi.errors(400, 403, 404, 409, 412, 413, 503)},
    )
    async def update_item(item_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)
        _no_nul(r, request, item_id)
        body = await _body(request)
        if not isinstance(body, dict) or r.name not in body:
            raise errors.HTTPBadRequest(f"Unable to find '{r.name}' in request body")
        _only(body, r.name)
        revision = _if_match(request.headers.get("if-match"))

        def respond(run: Run) -> JSONResponse:
            item = run(lambda tx: r.update(tx, ctx, item_id, body[r.name], limits, revision))
            return JSONResponse({r.name: r.view(item, ctx)})

        return await threads.write(respond)

    @app.delete(
        base + "/{item_id}",
        status_code=204,
        name=f"delete_{r.name}",
        tags=tags,
        summary=f"Delete a {r.name}",
        openapi_extra={"parameters": [openapi.IF_MATCH]},
        responses={204: {"description": "Deleted"}, **openapi.errors(400, 403, 404, 409, 412, 503)},
    )
    async def delete_item(item_id: str, request: Request) -> Response:
        ctx = auth.context(request)
        _no_nul(r, request, item_id)
        if await request.body():
            raise errors.HTTPBadRequest("Request body is not supported in DELETE.")
        revision = _if_match(request.headers.get("if-match"))

        def respond(run: Run) -> Response:
            run(lambda tx: r.service.delete(tx, ctx, item_id, if_revision=revision))
            return Response(status_code=204)

        return await threads.write(respond)


def from_environment() -> FastAPI:
    """The app for `portsec serve` workers: configuration comes through the environment."""
    db = Database(os.environ.get("PORTSEC_DATABASE_URL"))
    limits = Limits(int(os.environ.get("PORTSEC_MAX_ALLOWED_ADDRESS_PAIRS", "10")), quotas.defaults_from_environment())
    identity = identity_config.from_environment()
    return create_app(db, limits, TokenAuth(identity) if identity else NoAuth())
