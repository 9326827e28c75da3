"""uvicorn's HTTP protocol (one instance per connection), hardened against clients that hold connections.

TCP_NODELAY on every connection, whatever the worker count. With ``--workers N``
uvicorn binds the listening socket itself with protocol number 0, and asyncio
then skips TCP_NODELAY on accepted connections (it sets it only when the socket
says IPPROTO_TCP). A keep-alive client then waits for the delayed ACK, about
40 ms, on every request: 20 times the time the request takes.

A deadline to send a whole request. uvicorn closes a keep-alive connection idle
after a response (``timeout_keep_alive``), but not one that never completes a
request: a client that opens connections and sends part of a request line (or
of a body, or a byte now and then) keeps each one, and its file descriptor,
forever. Here a connection that has not delivered a whole request, headers and
body, ``request_timeout`` seconds after it opened or after its previous
response is closed. It is a deadline, not an idle timer, so trickling bytes
does not extend it; while the app works on a complete request none runs.

A bound on open connections. Past ``max_connections`` (below the open-file
limit, so the database and the logs still get files) a new connection gets a
503 and is closed at once, rather than accept() failing with EMFILE on every
connection, database files included, and asyncio logging each failure.

The parser is httptools (C, a dependency): the request hooks below are its callbacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOG = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
_BUSY = json.dumps(
    {
        "NeutronError": {
            "type": "HTTPServiceUnavailable",
            "message": "The server has too many open connections; retry later.",
            "detail": "",
        }
    },
    separators=(",", ":"),
).encode()
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    + b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n" % len(_BUSY)
    + _BUSY
)


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (every connection is a file); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def default_max_connections(open_files: int) -> int:
    """Three quarters of the open-file limit: the last quarter (at least 64) for the database, agent and logs."""
    return max(1, open_files - max(64, open_files // 4))


class ServerProtocol(HttpToolsProtocol):
    def __init__(
        self, *args: Any, request_timeout: float = REQUEST_TIMEOUT, max_connections: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._receiving = False  # between the first byte of a request and its last

    def connection_made(self, transport: Any) -> None:
        if self.max_connections is not None and len(self.connections) >= self.max_connections:
            self._refused = True
            LOG.warning("Refused a connection: %d open, this worker's --max-connections", len(self.connections))
            transport.write(_REFUSAL)
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return  # never counted nor parsed: uvicorn has nothing to undo
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._receiving = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._receiving = False
        self._disarm()  # the app has the whole request; the clock restarts with the response
        super().on_message_complete()

    def on_response_complete(self) -> None:
        waiting = bool(self.pipeline)  # a request already received, which uvicorn starts now
        super().on_response_complete()
        if not self.transport.is_closing() and (self._receiving or not waiting):
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()
