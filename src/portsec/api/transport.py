"""uvicorn's HTTP protocol with TCP_NODELAY on every connection, whatever the worker count.

With ``--workers N`` uvicorn binds the listening socket itself with protocol
number 0, and asyncio then skips TCP_NODELAY on accepted connections (it sets
it only when the socket says IPPROTO_TCP). A keep-alive client then waits for
the delayed ACK, about 40 ms, on every request: 20 times the time the request
takes. Setting the option when a connection is made removes that wait.

The parser is httptools (C) when installed, as uvicorn's "auto" would pick, else h11.
"""

from __future__ import annotations

import socket
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is a dependency; h11 is uvicorn's fallback
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


class NoDelayProtocol(_Base):
    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
