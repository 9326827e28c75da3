"""A hostile client can neither stall nor crash the server (issue 9).

In-process: JSON nested too deep or holding lone surrogates gets a 400 in the
route's error body, a bulk create past MAX_BULK_ITEMS a 400, and nothing changes.
Against a real `portsec serve`: a huge body is answered before it is read and
the server's peak memory stays flat; connections that never finish a request are
closed after --timeout-request while others are served; connections past
--max-connections are refused until some close; the log stays a few lines long.
"""

from __future__ import annotations

import http.client
import json
import logging
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from portsec.api import jsonbody
from portsec.api.app import create_app
from portsec.api.auth import TokenAuth
from portsec.api.identity import Identity
from portsec.api.limits import MAX_BULK_ITEMS
from portsec.api.logflood import RateLimit
from portsec.api.transport import default_max_connections
from tests.conftest import dump
from tests.server import server_process

IDENTITY = {
    "secret": "limits",
    "projects": [{"name": "demo"}],
    "users": [{"name": "alice", "password": "alice-pw", "roles": {"demo": ["admin"]}}],
}
JSON = {"Content-Type": "application/json"}
ANSWER = 5.0  # seconds: every answer awaited here comes within this, or the test fails
MIB = 1024 * 1024


def password_body(password: str) -> dict[str, Any]:
    user = {"name": "alice", "domain": {"name": "Default"}, "password": password}
    scope = {"project": {"name": "demo", "domain": {"name": "Default"}}}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}


# --- JSON that json.loads takes but that crashed the server later ---------------------------------------------

TOO_DEEP = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="arrays"),
    pytest.param(b'{"network": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, id="objects"),
    pytest.param(b"[" * 100_000, id="never-closed"),
    pytest.param(b'{"network": {"name": "x", "tags": ' + b"[" * 33 + b"]" * 33 + b"}}", id="one-past-the-bound"),
]
SURROGATES = [
    pytest.param(b'{"network": {"name": "\\ud800"}}', id="value"),
    pytest.param(b'{"network": {"name": "a\\udfffb", "description": "ok"}}', id="inside-a-value"),
    pytest.param(b'{"network": {"\\udc00": 1}}', id="key"),
    pytest.param(b'{"networks": [{"name": "a"}, {"tags": [{"x": ["\\ud83d"]}]}]}', id="deep-in-a-bulk"),
    pytest.param(b'{"network": {"name": "\xed\xa0\x80"}}', id="utf8-encoded"),  # json.loads takes U+D800 this way too
]


@pytest.mark.parametrize("raw", TOO_DEEP)
def test_json_nested_too_deep_is_refused_without_recursion(raw):
    with pytest.raises(jsonbody.InvalidJSON, match=f"deeper than {jsonbody.MAX_DEPTH} levels"):
        jsonbody.loads(raw)


@pytest.mark.parametrize("raw", SURROGATES)
def test_json_with_a_lone_surrogate_is_refused(raw):
    with pytest.raises(jsonbody.InvalidJSON, match="lone surrogate"):
        jsonbody.loads(raw)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"[" * 32 + b"]" * 32, json.loads(b"[" * 32 + b"]" * 32)),  # the bound itself
        (b'{"name": "' + b"[{" * 10_000 + b'"}', {"name": "[{" * 10_000}),  # brackets in a string do not nest
        (b'["\\"[[[[", "\\\\", "]]"]', ['"[[[[', "\\", "]]"]),  # nor do escaped quotes end one
        (b'{"\\ud83d\\ude00": "\\ud83d\\ude00"}', {"\U0001f600": "\U0001f600"}),  # a pair is one character
    ],
)
def test_json_within_the_bounds_is_read_as_json_loads_reads_it(raw, value):
    assert jsonbody.loads(raw) == value


@pytest.mark.parametrize("raw", [b"{not json", b'"unclosed \\"[[[[', b"[1,", b"\xff"])
def test_json_syntax_errors_are_plain_invalid_data(raw):
    with pytest.raises(jsonbody.InvalidJSON) as refused:
        jsonbody.loads(raw)
    assert refused.value.why == ""


@pytest.fixture
def api(sqlite_db):
    # 500s as responses, not raised: the point is which status a client gets.
    return TestClient(create_app(sqlite_db), raise_server_exceptions=False)


@pytest.mark.parametrize("raw", TOO_DEEP + SURROGATES)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v2.0/networks"), ("PUT", "/v2.0/networks/{id}")])
def test_deep_or_surrogate_bodies_get_neutrons_400_and_change_nothing(api, sqlite_db, raw, method, path):
    net = api.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    before = dump(sqlite_db)
    response = api.request(method, path.format(id=net["id"]), content=raw, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["NeutronError"]
    assert error["type"] == "HTTPBadRequest" and error["message"].startswith("Body contains invalid data: ")
    assert error["detail"] == ""
    assert dump(sqlite_db) == before


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps(password_body("\ud800")).encode(), id="surrogate-password"),
        pytest.param(b'{"auth": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", id="deep"),  # within 64 KiB
    ],
)
def test_deep_or_surrogate_auth_bodies_get_keystones_400(sqlite_db, raw):
    identity = TokenAuth(Identity.from_mapping(IDENTITY))
    client = TestClient(create_app(sqlite_db, auth=identity), raise_server_exceptions=False)
    response = client.post("/v3/auth/tokens", content=raw, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == 400 and "X-Subject-Token" not in response.headers


def test_a_bulk_create_past_the_maximum_is_refused_whole(api, sqlite_db):
    before = dump(sqlite_db)
    bulk = {"networks": [{"name": f"n{i}"} for i in range(MAX_BULK_ITEMS + 1)]}
    response = api.post("/v2.0/networks", json=bulk)
    assert response.status_code == 400
    assert response.json() == {
        "NeutronError": {
            "type": "HTTPBadRequest",
            "message": f"A bulk request holds at most {MAX_BULK_ITEMS} networks",
            "detail": "",
        }
    }
    assert dump(sqlite_db) == before


# --- the log: one line per condition per interval -------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_log_flood_is_one_line_per_condition_per_interval():
    now = [0.0]
    flood = RateLimit(interval=10, clock=lambda: now[0])
    console, log_file = _Lines(), _Lines()  # one filter on both, as `portsec serve --log-file` has it
    log = logging.getLogger("tests.flood")
    for handler in (console, log_file):
        handler.addFilter(flood)
        log.addHandler(handler)
    log.propagate = False
    try:
        for open_now in range(1000):
            log.warning("Refused a connection: %d are open", open_now)
            log.error("socket.accept() out of system resource\nsocket: fd=%d", open_now)  # asyncio's, multi-line
        log.error("Refused a connection: %d are open", 0)  # another level: another condition
        assert console.lines == [
            "Refused a connection: 0 are open",
            "socket.accept() out of system resource\nsocket: fd=0",
            "Refused a connection: 0 are open",
        ]
        now[0] = 10.5
        log.warning("Refused a connection: %d are open", 7)
        now[0] = 30.0
        log.warning("Refused a connection: %d are open", 8)
        assert console.lines[3:] == [
            "Refused a connection: 7 are open [999 more like this in the last 10 s]",
            "Refused a connection: 8 are open",  # nothing was suppressed since
        ]
        assert log_file.lines == console.lines  # each record judged once, not once per handler
    finally:
        for handler in (console, log_file):
            log.removeHandler(handler)


# --- open files: the bound sits below the limit, which `portsec serve` raises first --------------------------


@pytest.mark.parametrize("open_files", [256, 1024, 20_000, 1_048_576])
def test_the_default_connection_bound_leaves_files_to_spare(open_files):
    bound = default_max_connections(open_files)
    assert 0 < bound <= open_files - 64 and bound >= open_files // 2


def test_the_soft_open_file_limit_is_raised_to_the_hard_one():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard > 256, "needs a hard limit above 256 to show the raise"
    check = "from portsec.api.transport import raise_open_file_limit as r; import resource as s; "
    check += "print(r(), s.getrlimit(s.RLIMIT_NOFILE)[0])"
    done = subprocess.run(
        [sys.executable, "-c", check],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == [str(hard), str(hard)]


# --- a real server: huge bodies ---------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    pid: int
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def kib(self, field: str) -> int:
        """A memory figure of the serving process (one worker: `portsec serve` itself) from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")


@contextmanager
def running(tmp: Path, *args: str) -> Iterator[Server]:
    with (
        open(tmp / "server.log", "wb") as log,
        server_process(f"sqlite:///{tmp}/portsec.db", args=args, output=log) as (
            url,
            proc,
        ),
    ):
        yield Server(url, proc.pid, tmp / "server.log")


@pytest.fixture(scope="module")
def keystone(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("limits")
    (tmp / "identity.yaml").write_text(yaml.safe_dump(IDENTITY))
    with running(tmp, "--identity-config", str(tmp / "identity.yaml")) as server:
        yield server


@pytest.fixture(scope="module")
def token(keystone) -> str:
    issued = httpx.post(keystone.url + "/v3/auth/tokens", json=password_body("alice-pw"), timeout=30)
    assert issued.status_code == 201
    return issued.headers["X-Subject-Token"]


def answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """The HTTP answer on ``sock`` (read even after a reset: what came before it is still there)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def send_body(sock: socket.socket, megabytes: int, chunked: bool) -> int:
    """Up to ``megabytes`` MiB of body, until the server stops taking it; how many MiB it took."""
    chunk = b"x" * MIB
    framed = b"%x\r\n%s\r\n" % (MIB, chunk) if chunked else chunk
    for sent in range(megabytes):
        try:
            sock.sendall(framed)
        except OSError:  # closed, reset, or no longer read (the socket's timeout): the server stopped taking it
            return sent
    if chunked:
        sock.sendall(b"0\r\n\r\n")
    return megabytes


@pytest.mark.parametrize(
    ("request_line", "status", "kind"),
    [
        ("POST /v3/auth/tokens", 413, None),  # Keystone's body
        ("DELETE /v2.0/ports/6b7a3c66-8a8e-4a4f-9d8e-0f6a1c3e2b10", 400, "HTTPBadRequest"),  # takes no body
        ("POST /v2.0/networks", 413, "HTTPRequestEntityTooLarge"),
        ("PUT /v2.0/networks/6b7a3c66-8a8e-4a4f-9d8e-0f6a1c3e2b10", 413, "HTTPRequestEntityTooLarge"),
        ("GET /v2.0/networks", 413, "HTTPRequestEntityTooLarge"),
    ],
)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_huge_body_is_answered_before_it_is_read(keystone, token, request_line, status, kind, framing):
    if framing == "chunked" and request_line.startswith("GET"):
        status = 200  # a list reads no body, so it counts none: it answers, and the connection closes on the rest
    length = "Transfer-Encoding: chunked" if framing == "chunked" else f"Content-Length: {400 * MIB}"
    head = f"{request_line} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\nContent-Type: application/json\r\n"
    Path(f"/proc/{keystone.pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the RSS now
    before = keystone.kib("VmRSS")
    with socket.create_connection(keystone.address, timeout=ANSWER) as sock:
        sock.sendall(f"{head}{length}\r\n\r\n".encode())
        if framing == "content-length":  # answered with no byte of the body sent
            got = answer(sock)
            taken = send_body(sock, 32, chunked=False)
        else:
            taken = send_body(sock, 32, chunked=True)
            got = answer(sock)
    assert got[0] == status
    if kind is None:
        assert got[1]["error"] == {"code": 413, "title": "Request Entity Too Large", "message": "Request is too large."}
    elif status == 200:
        assert got[1] == {"networks": []}
    else:
        assert got[1]["NeutronError"]["type"] == kind
    assert taken < 32, "the server read the whole body"
    assert keystone.kib("VmHWM") - before < 8 * 1024, "the server's memory grew with the body"


# --- a real server: connections that hold on ---------------------------------------------------------------------


def closed_by_server(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):  # an answer (a 400 for a partial request, say), then the end
            pass
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    return True


def test_connections_that_never_finish_a_request_are_closed_while_others_are_served(tmp_path):
    timeout = 2.0
    with running(tmp_path, "--timeout-request", str(timeout)) as server, ExitStack() as sockets:
        holders = [sockets.enter_context(socket.create_connection(server.address)) for _ in range(300)]
        for i, sock in enumerate(holders):
            sock.sendall(
                [
                    b"",  # connected, silent
                    b"GET /v2.0/networks HT",  # part of a request line
                    b'POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"netw',  # part of a body
                    b"\x16\x03\x01 not HTTP\r\n\r\n",  # refused by the parser at once: a warning each, unlimited
                ][i % 4]
            )
        trickler = sockets.enter_context(socket.create_connection(server.address))
        trickler.sendall(b"GET /v2.0/networks HTTP/1.1\r\nX-Slow: ")  # then one byte now and then
        everyone = [*holders, trickler]
        selector = sockets.enter_context(selectors.DefaultSelector())
        for sock in everyone:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_ = set(everyone)
        served = 0
        with httpx.Client(base_url=server.url, timeout=ANSWER) as client:
            deadline = time.monotonic() + timeout + 3 * ANSWER
            while open_ and time.monotonic() < deadline:
                assert client.get("/v2.0/networks").status_code == 200  # a normal client, answered meanwhile
                served += 1
                if trickler in open_:
                    with suppress(OSError):
                        trickler.send(b"a")
                for key, _ in selector.select(timeout=0.2):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if closed_by_server(sock):
                        selector.unregister(sock)
                        open_.discard(sock)
        assert not open_, f"{len(open_)} of {len(everyone)} connections still open"
        assert served > 0
    log = server.log.read_text()
    assert log.count("Invalid HTTP request received.") == 1, log  # not 75 lines
    assert "Traceback" not in log and len(log) < 2000, log


def test_connections_past_the_maximum_are_refused_until_some_close(tmp_path):
    bound = 40
    with running(tmp_path, "--max-connections", str(bound), "--timeout-request", "60") as server, ExitStack() as held:
        idle = [held.enter_context(socket.create_connection(server.address)) for _ in range(bound)]
        refusals = []
        for _ in range(200):
            with socket.create_connection(server.address, timeout=ANSWER) as extra:
                with suppress(ConnectionError):  # refused before the request went out: the answer is still there
                    extra.sendall(b"GET /v2.0/networks HTTP/1.1\r\nHost: x\r\n\r\n")
                refusals.append(answer(extra))
        assert {status for status, _ in refusals} == {503}
        assert refusals[0][1]["NeutronError"]["type"] == "HTTPServiceUnavailable"
        with httpx.Client(base_url=server.url, timeout=ANSWER) as client:
            assert client.get("/v2.0/networks").status_code == 503
            for sock in idle[:10]:
                sock.close()
            statuses = []
            deadline = time.monotonic() + ANSWER
            while time.monotonic() < deadline and statuses[-1:] != [200]:
                statuses.append(client.get("/v2.0/networks").status_code)
                time.sleep(0.05)
            assert statuses[-1] == 200, statuses
    log = server.log.read_text()
    assert log.count("Refused a connection") == 1 and len(log) < 2000, log  # not 201 lines
