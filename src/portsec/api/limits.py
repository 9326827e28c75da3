"""Request body sizes, bounded in front of every route before any of the body is read.

One ASGI middleware for every method and path: a Content-Length over the limit
is answered at once, before the route runs; a body without one (chunked) is
counted as it arrives and cut at the limit. The answer is the API's own error
body and closes the connection, so the server neither reads nor keeps the rest.
So does any answer given before the body was all read (a 401 before a 1 MiB
body, say): uvicorn would otherwise read and discard the rest to keep the
connection, for as long as the client sends.

Starlette's RequestBodyLimitMiddleware (``max_body_size``) counts the same way
but answers in plain text ("Content Too Large") rather than Neutron's or
Keystone's body, only once the route reads the body or answers, and keeps the
connection open to drain whatever the client still sends: hence this one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portsec.api.auth import MAX_AUTH_BODY
from portsec.api.identity import error_body

MAX_BODY = 1024 * 1024  # Neutron's max_request_body_size default is 114688; pairs x ports bulk needs more
MAX_BULK_ITEMS = 1000  # resources in one bulk create; Neutron has no such bound (its quotas give one)


@dataclass(frozen=True)
class Limit:
    max_bytes: int
    status: int  # and the error body, answered beyond max_bytes
    body: dict[str, Any]


def _neutron(kind: str, message: str) -> dict[str, Any]:
    return {"NeutronError": {"type": kind, "message": message, "detail": ""}}


_KEYSTONE = Limit(MAX_AUTH_BODY, 413, error_body(413, "Request Entity Too Large", "Request is too large."))
_DELETE = Limit(0, 400, _neutron("HTTPBadRequest", "Request body is not supported in DELETE."))
_NEUTRON = Limit(MAX_BODY, 413, _neutron("HTTPRequestEntityTooLarge", "Request is too large."))


def limit_for(method: str, path: str) -> Limit:
    """Keystone's routes take a password request; a DELETE takes no body (Neutron answers 400); the rest 1 MiB."""
    if path == "/v3" or path.startswith("/v3/"):
        return _KEYSTONE
    if method == "DELETE":
        return _DELETE
    return _NEUTRON


_CLOSE = (b"connection", b"close")


class _OverLimit(Exception):
    """Raised into the route from receive(); caught again by BodyLimit, which answers."""


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_of: Callable[[str, str], Limit] = limit_for) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared > limit.max_bytes:
            await _refuse(limit, send)
            return
        received = 0
        started = False
        unread = declared > 0 or any(name == b"transfer-encoding" for name, _ in scope["headers"])

        async def counted_receive() -> Message:
            nonlocal received, unread
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise _OverLimit()
                unread = unread and message.get("more_body", False)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if unread:
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _OverLimit:
            if started:
                raise
            await _refuse(limit, send)
        except ClientDisconnect:
            pass  # the client left before its body was read (or timed out): nobody to answer, nothing failed


def _declared_length(scope: Scope) -> int:
    """The largest Content-Length header, 0 without one.

    uvicorn's parser has refused any that is not a number; one of more than 18
    digits is over every limit, and int() is not asked to read thousands of them.
    """
    lengths = [value for name, value in scope["headers"] if name == b"content-length"]
    return max((int(v) if v.isdigit() and len(v) <= 18 else 2**63 for v in lengths), default=0)


async def _refuse(limit: Limit, send: Send) -> None:
    body = json.dumps(limit.body, separators=(",", ":")).encode()
    # Connection: close, so the rest of the body is neither read nor drained (uvicorn closes after the answer).
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), _CLOSE]
    await send({"type": "http.response.start", "status": limit.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
