"""Who is calling: the request context, and the identity endpoints when portsec is its own Keystone.

Two strategies, as Neutron's ``auth_strategy``:

- ``NoAuth``: the project comes from X-Project-Id and the roles from X-Roles; a
  request with neither runs as admin.
- ``TokenAuth``: every /v2.0 request carries an X-Auth-Token issued by the
  built-in identity endpoint (``portsec.api.identity``); without a valid one,
  401 with Keystone's body, as keystonemiddleware answers.

The rest of the API sees only ``Auth.context(request)`` and ``Auth.install(app)``:
a switch to an external Keystone (keystonemiddleware) replaces this module only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from portsec.api.identity import BadAuthRequest, Identity, Unauthorized, error_body
from portsec.domain import errors
from portsec.domain.model import DEFAULT_PROJECT_ID, Context

IDENTITY_VERSION = "v3.14"
MAX_AUTH_BODY = 64 * 1024
_UNAUTHORIZED = "The request you have made requires authentication."


class Unauthenticated(Exception):
    """No valid token on a request that needs one."""


class Auth(Protocol):
    def context(self, request: Request) -> Context: ...

    def install(self, app: FastAPI) -> None: ...

    def root_versions(self, base_url: str) -> list[dict[str, Any]]: ...

    def openapi_security(self) -> dict[str, Any]: ...


def noauth_context(headers: Mapping[str, str]) -> Context:
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    roles_header = headers.get("x-roles")
    if "\x00" in (project or "") + (roles_header or ""):
        raise errors.HTTPBadRequest("X-Project-Id and X-Roles may not contain a NUL character")
    roles: tuple[str, ...]
    if roles_header is None:
        roles = ("admin", "member", "reader") if project is None else ("member", "reader")
    else:
        roles = tuple(r.strip().lower() for r in roles_header.split(",") if r.strip())
    return Context(project_id=project or DEFAULT_PROJECT_ID, is_admin="admin" in roles, roles=roles)


class NoAuth:
    def context(self, request: Request) -> Context:
        return noauth_context(request.headers)

    def install(self, app: FastAPI) -> None:
        pass

    def root_versions(self, base_url: str) -> list[dict[str, Any]]:
        return []

    def openapi_security(self) -> dict[str, Any]:
        return {}


def _v3(base_url: str) -> dict[str, Any]:
    return {
        "id": IDENTITY_VERSION,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": base_url.rstrip("/") + "/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


def _keystone_error(status: int, title: str, message: str, base_url: str) -> JSONResponse:
    headers = {"WWW-Authenticate": f'Keystone uri="{base_url.rstrip("/")}/v3"'} if status == 401 else None
    return JSONResponse(error_body(status, title, message), status_code=status, headers=headers)


class TokenAuth:
    """Tokens from the built-in identity endpoint; context = the token's project and roles."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def context(self, request: Request) -> Context:
        token = request.headers.get("x-auth-token")
        if not token:
            raise Unauthenticated()
        try:
            grant = self.identity.validate(token)
        except Unauthorized:
            raise Unauthenticated() from None
        return Context(project_id=grant.project.id, is_admin="admin" in grant.roles, roles=grant.roles)

    def root_versions(self, base_url: str) -> list[dict[str, Any]]:
        return [_v3(base_url)]

    def openapi_security(self) -> dict[str, Any]:
        """OpenAPI's view: /v2.0 needs the X-Auth-Token that POST /v3/auth/tokens returns."""
        scheme = {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
        return {"components": {"securitySchemes": {"keystone": scheme}}, "security": [{"keystone": []}]}

    def install(self, app: FastAPI) -> None:
        identity = self.identity

        @app.exception_handler(Unauthenticated)
        async def unauthenticated(request: Request, _err: Exception) -> JSONResponse:
            return _keystone_error(401, "Unauthorized", _UNAUTHORIZED, str(request.base_url))

        @app.get("/v3", tags=["identity"], summary="Identity v3 version discovery")
        @app.get("/v3/", include_in_schema=False)
        def discovery(request: Request) -> JSONResponse:
            return JSONResponse({"version": _v3(str(request.base_url))})

        @app.post(
            "/v3/auth/tokens",
            tags=["identity"],
            summary="Issue a project-scoped token for a password",
            status_code=201,
            openapi_extra=_openapi_auth_request(),
            responses=_openapi_token_responses(201),
        )
        async def issue(request: Request) -> JSONResponse:
            base = str(request.base_url)
            raw = await request.body()
            if len(raw) > MAX_AUTH_BODY:
                return _keystone_error(413, "Request Entity Too Large", "Request is too large.", base)
            try:
                token, grant = identity.authenticate(json.loads(raw))
            except (ValueError, UnicodeDecodeError):
                return _keystone_error(400, "Bad Request", "The request body is not valid JSON.", base)
            except BadAuthRequest as err:
                return _keystone_error(400, "Bad Request", str(err), base)
            except Unauthorized:
                return _keystone_error(401, "Unauthorized", _UNAUTHORIZED, base)
            return JSONResponse(identity.token_body(grant, base), status_code=201, headers={"X-Subject-Token": token})

        @app.get(
            "/v3/auth/tokens",
            tags=["identity"],
            summary="Validate the token in X-Subject-Token (the caller's X-Auth-Token must be valid)",
            openapi_extra={
                "parameters": [
                    {"name": "X-Auth-Token", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "X-Subject-Token", "in": "header", "required": True, "schema": {"type": "string"}},
                ]
            },
            responses=_openapi_token_responses(200),
        )
        def check(request: Request) -> JSONResponse:
            self.context(request)
            try:
                grant = identity.validate(request.headers.get("x-subject-token", ""))
            except Unauthorized:
                return _keystone_error(404, "Not Found", "Could not find token.", str(request.base_url))
            subject = request.headers["x-subject-token"]
            return JSONResponse(identity.token_body(grant, str(request.base_url)), headers={"X-Subject-Token": subject})


def _openapi_auth_request() -> dict[str, Any]:
    string: dict[str, Any] = {"type": "string"}
    domain = {"type": "object", "properties": {"id": string, "name": string}}
    name_or_id = {"type": "object", "properties": {"id": string, "name": string, "domain": domain}}
    user = {"type": "object", "properties": {"id": string, "name": string, "domain": domain, "password": string}}
    schema = {
        "type": "object",
        "required": ["auth"],
        "properties": {
            "auth": {
                "type": "object",
                "required": ["identity"],
                "properties": {
                    "identity": {
                        "type": "object",
                        "required": ["methods", "password"],
                        "properties": {
                            "methods": {"type": "array", "items": {"type": "string"}},
                            "password": {"type": "object", "properties": {"user": user}},
                        },
                    },
                    "scope": {"type": "object", "properties": {"project": name_or_id}},
                },
            }
        },
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _openapi_token_responses(success: int) -> dict[int | str, dict[str, Any]]:
    error = {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "integer"},
                                "title": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            }
        }
    }
    token = {"type": "object", "required": ["token"], "properties": {"token": {"type": "object"}}}
    return {
        success: {
            "description": "The token; its id is in the X-Subject-Token header",
            "content": {"application/json": {"schema": token}},
        },
        400: {"description": "Malformed auth request", **error},
        401: {"description": "Wrong credentials or token", **error},
        404: {"description": "Unknown subject token", **error},
        413: {"description": "Body over 64 KiB", **error},
    }
