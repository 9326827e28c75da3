"""Neutron's quota API (extensions ``quotas`` and ``quota_details``) on /v2.0/quotas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from portsec.api import openapi
from portsec.api.auth import Auth
from portsec.domain.quotas import QuotaDefaults
from portsec.service import quotas
from portsec.store.database import Run

if TYPE_CHECKING:  # the app module registers these routes: no import cycle at run time
    from portsec.api.app import DatabaseThreads

BASE = "/v2.0/quotas"
ONE = BASE + "/{project_id}"


def install(
    app: FastAPI,
    threads: DatabaseThreads,
    auth: Auth,
    defaults: QuotaDefaults,
    read_body: Callable[[Request], Awaitable[Any]],
) -> None:
    """The routes; ``read_body`` is the API's JSON reader (its errors), ``threads`` where database work runs."""
    tags: list[str | Enum] = ["quotas"]

    @app.get(
        BASE,
        name="list_quotas",
        tags=tags,
        summary="The quotas of every project that has its own (admin)",
        responses={200: openapi.quota_list(), **openapi.errors(403, 503)},
    )
    async def list_quotas(request: Request) -> JSONResponse:
        ctx = auth.context(request)

        def respond(run: Run) -> JSONResponse:
            found = run(lambda tx: quotas.list_(tx, ctx, defaults))
            return JSONResponse({"quotas": found})

        return await threads.read(respond)

    # Neutron's "who am I" (python-neutronclient's use): before /{project_id}, which would take these names.
    for key in ("project", "tenant"):
        app.get(
            f"{BASE}/{key}",
            name=f"quota_{key}",
            tags=tags,
            summary=f"The caller's {key} id",
            responses={200: openapi.current_project(key), **openapi.UNAUTHORIZED},
        )(_whoami(auth, key))

    @app.get(
        ONE,
        name="show_quota",
        tags=tags,
        summary="A project's quotas (another project's: admin)",
        responses={200: openapi.quota(), **openapi.errors(400, 403, 503)},
    )
    async def show_quota(project_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)

        def respond(run: Run) -> JSONResponse:
            found = run(lambda tx: quotas.show(tx, ctx, defaults, project_id))
            return JSONResponse({"quota": found})

        return await threads.read(respond)

    @app.get(
        ONE + "/default",
        name="show_default_quota",
        tags=tags,
        summary="The default quotas, which a project has until an admin sets its own",
        responses={200: openapi.quota(), **openapi.errors(403)},
    )
    def show_default_quota(project_id: str, request: Request) -> JSONResponse:
        return JSONResponse({"quota": quotas.default(auth.context(request), defaults, project_id)})

    @app.get(
        ONE + "/details",
        name="show_quota_details",
        tags=tags,
        summary="A project's limits with what it uses",
        responses={200: openapi.quota(details=True), **openapi.errors(400, 403, 503)},
    )
    async def show_quota_details(project_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)

        def respond(run: Run) -> JSONResponse:
            found = run(lambda tx: quotas.details(tx, ctx, defaults, project_id))
            return JSONResponse({"quota": found})

        return await threads.read(respond)

    @app.put(
        ONE,
        name="update_quota",
        tags=tags,
        summary="Set some of a project's quotas (admin); refused below current use unless force",
        openapi_extra=openapi.quota_request(),
        responses={200: openapi.quota(), **openapi.errors(400, 403, 413, 503)},
    )
    async def update_quota(project_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)
        quotas.check_update(ctx)  # Neutron refuses a non-admin before it reads the body
        body = await read_body(request)

        def respond(run: Run) -> JSONResponse:
            return JSONResponse({"quota": run(lambda tx: quotas.update(tx, ctx, defaults, project_id, body))})

        return await threads.write(respond)

    @app.delete(
        ONE,
        status_code=204,
        name="delete_quota",
        tags=tags,
        summary="Give a project the default quotas again (admin)",
        responses={204: {"description": "Reset"}, **openapi.errors(400, 403, 404, 503)},
    )
    async def delete_quota(project_id: str, request: Request) -> Response:
        ctx = auth.context(request)

        def respond(run: Run) -> Response:
            run(lambda tx: quotas.delete(tx, ctx, project_id))
            return Response(status_code=204)

        return await threads.write(respond)


def _whoami(auth: Auth, key: str) -> Callable[[Request], JSONResponse]:
    def whoami(request: Request) -> JSONResponse:
        return JSONResponse({key: {f"{key}_id": auth.context(request).project_id}})

    return whoami
