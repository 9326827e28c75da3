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

from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from portsec.api import jsonbody
from portsec.api.identity import IMPLIED_ROLES, BadAuthRequest, Grant, Identity, IdentityFile, Unauthorized, error_body
from portsec.domain import errors
from portsec.domain.model import DEFAULT_PROJECT_ID, Context

IDENTITY_VERSION = "v3.14"
MAX_AUTH_BODY = 64 * 1024
_UNAUTHORIZED = "The request you have made requires authentication."
# Keystone's ForbiddenAction for its validate_token policy.
_FORBIDDEN_VALIDATE = "You are not authorized to perform the requested action: identity:validate_token."


class Unauthenticated(Exception):
    """No valid token on a request that needs one."""


class Auth(Protocol):
    def context(self, request: Request) -> Context: ...

    def install(self, app: FastAPI) -> None: ...

    def openapi_security(self) -> dict[str, Any]: ...


def noauth_context(headers: Mapping[str, str]) -> Context:
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    roles_header = headers.get("x-roles")
    if "\x00" in (project or "") + (roles_header or ""):
        raise errors.HTTPBadRequest("X-Project-Id and X-Roles may not contain a NUL character")
    if roles_header is None:
        named = ["admin"] if project is None else ["member"]
    else:
        named = [r.strip().lower() for r in roles_header.split(",") if r.strip()]
    # Keystone puts the implied roles in a token (admin > manager > member > reader): X-Roles stands for one.
    roles = tuple(dict.fromkeys(name for role in named for name in (role, *IMPLIED_ROLES.get(role, ()))))
    return Context(project_id=project or DEFAULT_PROJECT_ID, is_admin="admin" in roles, roles=roles)


class NoAuth:
    def context(self, request: Request) -> Context:
        return noauth_context(request.headers)

    def install(self, app: FastAPI) -> None:
        pass

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


def may_validate(caller: Grant, subject: Grant) -> bool:
    """Keystone's identity:validate_token: an admin, a service, or the subject token's own user."""
    return bool({"admin", "service"} & set(caller.roles)) or caller.user.id == subject.user.id


class TokenAuth:
    """Tokens from the built-in identity endpoint; context = the token's project and roles."""

    def __init__(self, identity: Identity | IdentityFile) -> None:
        # A fixed identity, or the file of `portsec serve`, whose edits count from the next look at it.
        self._source = identity

    @property
    def identity(self) -> Identity:
        return self._source.current() if isinstance(self._source, IdentityFile) else self._source

    @staticmethod
    def _caller(request: Request, identity: Identity) -> Grant:
        token = request.headers.get("x-auth-token")
        if not token:
            raise Unauthenticated()
        try:
            return identity.validate(token)
        except Unauthorized:
            raise Unauthenticated() from None

    def context(self, request: Request) -> Context:
        grant = self._caller(request, self.identity)
        return Context(project_id=grant.project.id, is_admin="admin" in grant.roles, roles=grant.roles)

    def openapi_security(self) -> dict[str, Any]:
        """OpenAPI's view: /v2.0 needs the X-Auth-Token that POST /v3/auth/tokens returns."""
        scheme = {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
        return {"components": {"securitySchemes": {"keystone": scheme}}, "security": [{"keystone": []}]}

    def _issue(self, body: Any, base: str) -> JSONResponse:
        identity = self.identity
        try:
            token, grant = identity.authenticate(body)
        except BadAuthRequest as err:
            return _keystone_error(400, "Bad Request", str(err), base)
        except Unauthorized:
            return _keystone_error(401, "Unauthorized", _UNAUTHORIZED, base)
        return JSONResponse(identity.token_body(grant, base), status_code=201, headers={"X-Subject-Token": token})

    def install(self, app: FastAPI) -> None:
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
            responses=_openapi_token_responses(
                201, {400: "Malformed auth request", 401: "Wrong credentials", 413: "Body over 64 KiB"}
            ),
        )
        async def issue(request: Request) -> JSONResponse:
            base = str(request.base_url)
            try:  # the body's size (MAX_AUTH_BODY) is bounded by limits.BodyLimit before the route runs
                body = jsonbody.loads(await request.body())
            except jsonbody.InvalidJSON as err:
                reason = f": {err.why}" if err.why else ""
                return _keystone_error(400, "Bad Request", f"The request body is not valid JSON{reason}.", base)
            # A password check is a key derivation of tens of milliseconds: run it in a thread, as the sync
            # routes are, so that the event loop keeps serving other requests meanwhile.
            return await run_in_threadpool(self._issue, body, base)

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
            responses=_openapi_token_responses(
                200,
                {
                    401: "No valid X-Auth-Token",
                    403: "The caller is neither admin, nor service, nor the subject token's user",
                    404: "Unknown subject token",
                },
            ),
        )
        def check(request: Request) -> JSONResponse:
            base, identity = str(request.base_url), self.identity
            caller = self._caller(request, identity)
            subject_token = request.headers.get("x-subject-token", "")
            # Keystone's order: the subject is validated (404) before the policy is enforced (403).
            try:
                subject = identity.validate(subject_token)
            except Unauthorized:
                return _keystone_error(404, "Not Found", "Could not find token.", base)
            if not may_validate(caller, subject):
                return _keystone_error(403, "Forbidden", _FORBIDDEN_VALIDATE, base)
            return JSONResponse(identity.token_body(subject, base), headers={"X-Subject-Token": subject_token})


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


def _openapi_token_responses(success: int, failures: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
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
        **{status: {"description": description, **error} for status, description in failures.items()},
    }
