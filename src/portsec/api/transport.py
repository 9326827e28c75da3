"""uvicorn's HTTP protocol with TCP_NODELAY on every connection, whatever the worker count.

With ``--workers N`` uvicorn binds the listening socket itself with protocol
number 0, and asyncio then skips TCP_NODELAY on accepted connections (it sets
it only when the socket says IPPROTO_TCP). A keep-alive client then waits for
the delayed ACK, about 40 ms, on every request: 20 times the time the request
takes. Setting the option when a connection is made removes that wait.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
