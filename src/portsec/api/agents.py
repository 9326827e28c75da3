"""Neutron's agent API (extension ``agent``) on /v2.0/agents: list, show, update, delete; agents create themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from portsec.api import listing, openapi
from portsec.api.auth import Auth
from portsec.domain import errors
from portsec.service import agents
from portsec.store.database import Run, now

if TYPE_CHECKING:  # the app module registers these routes: no import cycle at run time
    from portsec.api.app import DatabaseThreads

EXTENSION = ("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00")
BASE = "/v2.0/agents"
ONE = BASE + "/{agent_id}"
_AGENT = openapi.json_body({"type": "object", "required": ["agent"]})
_AGENTS = openapi.json_body({"type": "object", "required": ["agents"]})


def _no_nul(request: Request, agent_id: str | None = None) -> None:
    """No column compares with a NUL (PostgreSQL refuses it): answer before the store, as the other resources."""
    if agent_id is not None and "\x00" in agent_id:
        raise errors.AgentNotFound(id=agent_id)
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise errors.HTTPBadRequest(f"Invalid input for {key!r}: a NUL character is not allowed")


def _project(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


def install(
    app: FastAPI,
    threads: DatabaseThreads,
    auth: Auth,
    read_body: Callable[[Request], Awaitable[Any]],
    down_time: float,
) -> None:
    """The routes; ``down_time``: seconds without a heartbeat after which an agent is not alive."""
    tags: list[str | Enum] = ["agents"]

    @app.get(
        BASE,
        name="list_agents",
        tags=tags,
        summary="List agents (admin; others see none)",
        openapi_extra={"parameters": openapi.list_parameters("agent")},
        responses={200: _AGENTS, **openapi.errors(400, 503)},
    )
    async def list_agents(request: Request) -> JSONResponse:
        def respond(run: Run) -> JSONResponse:
            ctx = auth.context(request)
            _no_nul(request)
            items = request.query_params.multi_items()
            query, fields = listing.parse("agent", items)
            found = run(lambda tx: agents.list_(tx, ctx, query, now(), down_time))
            body: dict[str, Any] = {"agents": [_project(a, fields) for a in found]}
            page_links = listing.links("agents", str(request.url.replace(query="")), items, query, found)
            if page_links:
                body["agents_links"] = page_links
            return JSONResponse(body)

        return await threads.read(respond)

    @app.get(
        ONE,
        name="show_agent",
        tags=tags,
        summary="Show an agent (admin)",
        openapi_extra={"parameters": [openapi.FIELDS]},
        responses={200: _AGENT, **openapi.errors(400, 404, 503)},
    )
    async def show_agent(agent_id: str, request: Request) -> JSONResponse:
        def respond(run: Run) -> JSONResponse:
            ctx = auth.context(request)
            _no_nul(request, agent_id)
            fields = request.query_params.getlist("fields")
            found = run(lambda tx: agents.get(tx, ctx, agent_id, now(), down_time))
            return JSONResponse({"agent": _project(found, fields)})

        return await threads.read(respond)

    @app.put(
        ONE,
        name="update_agent",
        tags=tags,
        summary="Set an agent's admin_state_up or description (admin)",
        openapi_extra={"requestBody": {"required": True, **_AGENT}},
        responses={200: _AGENT, **openapi.errors(400, 404, 413, 503)},
    )
    async def update_agent(agent_id: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)
        _no_nul(request, agent_id)
        body = await read_body(request)
        if not isinstance(body, dict) or "agent" not in body:
            raise errors.HTTPBadRequest("Unable to find 'agent' in request body")
        extra = sorted(k for k in body if k != "agent")
        if extra:  # as the other resources: nothing beside the resource
            raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'")

        def respond(run: Run) -> JSONResponse:
            updated = run(lambda tx: agents.update(tx, ctx, agent_id, body["agent"], tx.now, down_time))
            return JSONResponse({"agent": updated})

        return await threads.write(respond)

    @app.delete(
        ONE,
        status_code=204,
        name="delete_agent",
        tags=tags,
        summary="Delete an agent's row (admin); a running agent registers again at its next heartbeat",
        responses={204: {"description": "Deleted"}, **openapi.errors(400, 404, 503)},
    )
    async def delete_agent(agent_id: str, request: Request) -> Response:
        ctx = auth.context(request)
        _no_nul(request, agent_id)
        if await request.body():
            raise errors.HTTPBadRequest("Request body is not supported in DELETE.")

        def respond(run: Run) -> Response:
            run(lambda tx: agents.delete(tx, ctx, agent_id))
            return Response(status_code=204)

        return await threads.write(respond)
