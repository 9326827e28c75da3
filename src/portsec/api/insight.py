"""The ``portsec-insight`` extension: the operator's answers over HTTP, from the code the CLI runs.

- ``GET /v2.0/ports/{id}/drops``: packets the port's flows dropped, per reason (`portsec port drops`).
- ``POST /v2.0/ports/{id}/trace``: one packet through the port's flows (`portsec trace`).
- ``GET /v2.0/pair-lint[?network_id=|?port_id=]``: risky allowed address pairs (`portsec pair lint`).
- ``GET /v2.0/vips[?network_id=&ip_address=]``, ``GET /v2.0/vips/{ip_address}[?network_id=]``: the VIPs
  (host pairs two or more ports carry), which port answers for each, since when, and its moves (`portsec vip`).

The drops answer also holds the sources the agent sampled for the port and the
pairs that would allow them (`portsec port set --enable-port-security --dry-run`).

The two port routes are sub-resources of a port, as Neutron nests per-resource
data (``/v2.0/qos/policies/{id}/bandwidth_limit_rules``): a port the caller may
not see (``get_port``) is its 404 PortNotFound, before anything else is done.
Drop counters live in the switch: the server reads the bridge of its own host
(``PORTSEC_BRIDGE``, ``OVS_RUNDIR``), which holds the port's flows when the agent
runs there (``portsec serve``'s embedded agent); with no switch to read it
answers 503, never a guess.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from portsec.agent.local import LocalSwitch, choose_ofport, port_drops
from portsec.agent.ofctl import OfctlError
from portsec.api import openapi
from portsec.api.auth import Auth
from portsec.domain import errors
from portsec.domain.model import Context
from portsec.guards import guard_from_view
from portsec.openflow.flows import DROP_REASONS
from portsec.ovn.settings import ENV_BACKEND, ENV_SB, OVN
from portsec.service import insight, policy, ports, sources, views, vips
from portsec.store.database import Run

if TYPE_CHECKING:  # the app module registers these routes: no import cycle at run time
    from portsec.api.app import DatabaseThreads

EXTENSION = (
    "portsec-insight",
    "portsec operator insight",
    "Per-port drop counters by reason (GET ports/{id}/drops), packet traces through a port's anti-spoofing flows "
    "(POST ports/{id}/trace), the allowed-address-pair lint (GET pair-lint), VIPs with their owner and moves "
    "(GET vips, GET vips/{ip_address}), and the sources a port sent from with the pairs that would allow them "
    "(in GET ports/{id}/drops).",
    "2026-12-01T00:00:00-00:00",
)
PORT = "/v2.0/ports/{item_id}"
LINT = "/v2.0/pair-lint"
LINT_SCOPES = ("network_id", "port_id")
VIPS = "/v2.0/vips"
VIP_FILTERS = ("network_id", "ip_address")
MAX_OFPORT = 0xFEFF  # OFPP_MAX - 1: the highest ofport of a real interface
TRACE_KEYS = frozenset({"microflow", "ofport"})


class DropCountersUnavailable(errors.ServiceUnavailable):
    message = (
        "The drop counters of port %(port_id)s cannot be read: %(trouble)s. They come from the Open vSwitch "
        "bridge of this server's host, where the native agent (portsec serve, portsec agent) installs the flows."
    )


class DropCountersNotKept(errors.Conflict):
    message = (
        "Port %(port_id)s has no drop counters: they come from the native agent, and this server enforces through "
        "OVN, which counts drops per logical flow, shared by all ports. Trace a packet instead "
        "(POST /v2.0/ports/%(port_id)s/trace, portsec trace --backend ovn)."
    )


class TraceUnavailable(errors.ServiceUnavailable):
    message = "Packets of port %(port_id)s cannot be traced through OVN: %(trouble)s."


def install(
    app: FastAPI,
    threads: DatabaseThreads,
    auth: Auth,
    read_body: Callable[[Request], Awaitable[Any]],
) -> None:
    """The routes; ``read_body`` is the API's JSON reader (its errors), ``threads`` where database work runs."""
    tags: list[str | Enum] = ["portsec-insight"]

    async def visible_port(request: Request, item_id: str) -> tuple[Context, dict[str, Any]]:
        """The port as the caller sees it; PortNotFound when it may not (get_port)."""
        ctx = auth.context(request)
        if "\x00" in item_id:  # no id holds one, and PostgreSQL refuses it
            raise errors.PortNotFound(port_id=item_id)

        def respond(run: Run) -> dict[str, Any]:
            return run(lambda tx: views.port(ports.get(tx, ctx, item_id), ctx))

        return ctx, await threads.read(respond)

    @app.get(
        PORT + "/drops",
        name="show_port_drops",
        tags=tags,
        summary="Packets the port's anti-spoofing flows dropped, per reason (from this host's switch)",
        responses={200: _drops_schema(), **openapi.errors(404, 409), 503: _unavailable()},
    )
    async def show_port_drops(item_id: str, request: Request) -> JSONResponse:
        _, port = await visible_port(request, item_id)
        if os.environ.get(ENV_BACKEND) == OVN:
            raise DropCountersNotKept(port_id=port["id"])
        switch = LocalSwitch.from_environment()
        try:  # ovs-ofctl: a subprocess, in a worker thread (not a database one)
            dropped = await anyio.to_thread.run_sync(port_drops, switch, port["id"])
        except OfctlError as err:
            raise DropCountersUnavailable(port_id=port["id"], trouble=f"bridge {switch.bridge}: {err}") from None
        sampled = await threads.read(lambda run: run(lambda tx: sources.of_port(tx, port["id"])))
        suggested = sources.suggested_pairs(port, sampled)
        audited = not guard_from_view(port).enforced  # no port security: the counts are what it would drop
        return JSONResponse({"drops": dropped, "audit": audited, "sources": sampled, "suggested_pairs": suggested})

    @app.post(
        PORT + "/trace",
        name="trace_port",
        tags=tags,
        summary="Trace a packet sent by the port through its anti-spoofing flows: verdict, flows, why, the fix",
        openapi_extra={"requestBody": {"required": True, **openapi.json_body(_trace_request_schema())}},
        responses={200: _trace_schema(), **openapi.errors(400, 404, 413), 503: _unavailable()},
    )
    async def trace_port(item_id: str, request: Request) -> JSONResponse:
        _, port = await visible_port(request, item_id)
        microflow, given = _trace_request(await read_body(request))
        southbound = os.environ.get(ENV_SB)
        if os.environ.get(ENV_BACKEND) == OVN and southbound:
            return JSONResponse({"trace": await _trace_ovn(port, microflow, southbound)})
        switch = LocalSwitch.from_environment()
        ofport, where = await anyio.to_thread.run_sync(
            choose_ofport, port["id"], given, switch.ovsdb, "given in the request"
        )
        try:
            result = insight.trace_port(port, microflow, ofport)
        except insight.BadMicroflow as err:
            raise _invalid("microflow", str(err)) from None
        return JSONResponse({"trace": insight.trace_view(result, ofport, where)})

    @app.get(
        LINT,
        name="pair_lint",
        tags=tags,
        summary="Allowed address pairs that let a port impersonate another, over the ports the caller may see",
        openapi_extra={"parameters": _lint_parameters()},
        responses={200: _lint_schema(), **openapi.errors(400, 404), 503: _unavailable()},
    )
    async def pair_lint(request: Request) -> JSONResponse:
        ctx = auth.context(request)
        network_id, port_id = _lint_scope(request)

        def respond(run: Run) -> JSONResponse:
            found = run(lambda tx: insight.lint_visible(tx, ctx, network_id, port_id))
            return JSONResponse({"findings": [insight.finding_view(f) for f in found]})

        return await threads.read(respond)

    @app.get(
        VIPS,
        name="list_vips",
        tags=tags,
        summary="VIPs (a host pair carried by two or more ports of a network, or claimed by one): owner and moves",
        openapi_extra={"parameters": _vip_parameters(("network_id", "ip_address"))},
        responses={200: _vips_schema(), **openapi.errors(400), 503: _unavailable()},
    )
    async def list_vips(request: Request) -> JSONResponse:
        ctx = auth.context(request)
        given = _vip_filters(request, VIP_FILTERS)
        if given.get("ip_address") is not None:
            _ip(given["ip_address"])

        def respond(run: Run) -> JSONResponse:
            found = run(lambda tx: vips.list_(tx, ctx, given.get("network_id"), given.get("ip_address")))
            return JSONResponse({"vips": found})

        return await threads.read(respond)

    @app.get(
        VIPS + "/{ip_address}",
        name="show_vip",
        tags=tags,
        summary="One VIP: its ports, the port that answers for it, since when, and its last moves",
        openapi_extra={"parameters": _vip_parameters(("network_id",))},
        responses={200: _vip_schema(), **openapi.errors(400, 404, 409), 503: _unavailable()},
    )
    async def show_vip(ip_address: str, request: Request) -> JSONResponse:
        ctx = auth.context(request)
        network_id = _vip_filters(request, ("network_id",)).get("network_id")
        _ip(ip_address)

        def respond(run: Run) -> JSONResponse:
            return JSONResponse({"vip": run(lambda tx: vips.show(tx, ctx, ip_address, network_id))})

        return await threads.read(respond)


# Requests --------------------------------------------------------------------------------------------------------


async def _trace_ovn(port: dict[str, Any], microflow: str, southbound: str) -> dict[str, Any]:
    """The trace through OVN's logical pipeline (ovn-trace, a subprocess: in a worker thread)."""
    from portsec.ovn.trace import OvnTraceError, trace_ovn

    try:
        result = await anyio.to_thread.run_sync(trace_ovn, port, microflow, southbound)
    except OvnTraceError as err:
        raise TraceUnavailable(port_id=port["id"], trouble=str(err)) from None
    except ValueError as err:
        raise _invalid("microflow", f"Bad microflow {microflow!r}: {err}") from None
    return {
        "verdict": "forwarded" if result.forwarded else "dropped",
        "reason": result.dropped_by,
        "headline": result.headline(),
        "packet": str(result.packet),
        "ofport": None,
        "ofport_source": f"OVN: logical port {port['id']} ({result.expression})",
        "flows": list(result.stages),
        "why": result.why,
        "fix": result.fix,
    }


def _trace_request(body: Any) -> tuple[str, int | None]:
    """(microflow, ofport or None) from ``{"trace": {"microflow": ..., "ofport": ...}}``."""
    if not isinstance(body, dict) or not isinstance(body.get("trace"), dict):
        raise errors.HTTPBadRequest("Unable to find 'trace' in request body")
    extra = sorted(set(body) - {"trace"}) or sorted(set(body["trace"]) - TRACE_KEYS)
    if extra:
        raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'")
    trace = body["trace"]
    microflow = trace.get("microflow")
    if not isinstance(microflow, str):
        raise _invalid("microflow", f"'{microflow}' is not a valid string")
    return microflow, _ofport(trace.get("ofport"))


def _ofport(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 5.0 is the integer 5
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OFPORT:
        raise _invalid("ofport", f"'{value}' is not an OpenFlow port number from 1 to {MAX_OFPORT}")
    return value


def _invalid(attribute: str, reason: str) -> errors.HTTPBadRequest:
    """Neutron's message for an attribute that fails its validator."""
    return errors.HTTPBadRequest(f"Invalid input for {attribute}. Reason: {reason}.")


def _lint_scope(request: Request) -> tuple[str | None, str | None]:
    """(network_id, port_id): at most one of them, each at most once; any other key is refused."""
    given = _query(request, LINT_SCOPES)
    if any(len(values) > 1 for values in given.values()) or all(given.values()):
        raise errors.HTTPBadRequest("Lint one network (network_id) or one port (port_id), or give neither")
    network_id, port_id = (values[0] if values else None for values in given.values())
    if network_id is not None and "\x00" in network_id:
        raise errors.NetworkNotFound(net_id=network_id)
    if port_id is not None and "\x00" in port_id:
        raise errors.PortNotFound(port_id=port_id)
    return network_id, port_id


def _vip_filters(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """Each of ``allowed`` at most once; any other key is refused."""
    given: dict[str, str] = {}
    for key, values in _query(request, allowed).items():
        if len(values) > 1:
            raise errors.HTTPBadRequest(f"Give {key} at most once")
        if values and "\x00" in values[0]:
            raise _invalid(key, f"'{values[0]}' holds a NUL character")
        if values:
            given[key] = values[0]
    return given


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """The values of each of ``allowed`` in the query string; a key not allowed is refused, as Neutron does."""
    items = request.query_params.multi_items()
    unknown = {key for key, _ in items if key not in allowed}
    if unknown:
        raise policy.unknown_filters(unknown)
    return {key: [v for k, v in items if k == key] for key in allowed}


def _ip(text: str) -> None:
    try:
        vips.canonical_ip(text)
    except ValueError:
        raise _invalid("ip_address", f"'{text}' is not a valid IP address") from None


# OpenAPI ---------------------------------------------------------------------------------------------------------


def _unavailable() -> dict[str, Any]:
    return {
        "description": "The database is busy, or (drops) this host's switch cannot be read",
        **openapi.json_body({"$ref": "#/components/schemas/NeutronErrorBody"}),
    }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_STRING, _STRINGS = {"type": "string"}, {"type": "array", "items": {"type": "string"}}


_TIME = {"type": "string", "description": "ISO-8601 UTC with milliseconds, e.g. 2026-12-01T20:10:05.123Z"}
_MAYBE_STRING = {"type": ["string", "null"]}


def _drops_schema() -> dict[str, Any]:
    counts = _object({reason: {"type": "integer", "minimum": 0} for reason in DROP_REASONS})
    source = _object(
        {
            "reason": {**_STRING, "description": "The drop reason the agent sampled it under"},
            "mac_address": _STRING,
            "ip_address": {**_STRING, "description": "Empty when the frame had no IP source"},
            "packets": {"type": "integer", "minimum": 0},
            "first_seen": _TIME,
            "last_seen": _TIME,
        }
    )
    pair = _object({"ip_address": _STRING, "mac_address": _STRING}, required=["ip_address"])
    return openapi.json_body(
        _object(
            {
                "drops": counts,
                "audit": {
                    "type": "boolean",
                    "description": "True for a port without port security: nothing was dropped, and the counts are "
                    "what its audit flows saw that enabling port security would drop",
                },
                "sources": {"type": "array", "items": source, "description": "Sampled sources, most packets first"},
                "suggested_pairs": {
                    "type": "array",
                    "items": pair,
                    "description": "Pairs that would allow the sampled sources (mac_address absent: the port's)",
                },
            }
        )
    )


def _vip_object() -> dict[str, Any]:
    move = _object({"port_id": _STRING, "previous_port_id": _MAYBE_STRING, "at": _TIME, "host": _STRING})
    return _object(
        {
            "network_id": _STRING,
            "ip_address": _STRING,
            "ports": {**_STRINGS, "description": "IDs of the ports that carry the VIP as a pair, sorted"},
            "port_id": {**_MAYBE_STRING, "description": "The port that last claimed it (null: never seen)"},
            "since": {**_MAYBE_STRING, "description": "When the owner claimed it"},
            "moves": {"type": "integer", "minimum": 0, "description": "Owner changes after the first claim"},
            "last_move": _MAYBE_STRING,
            "history": {"type": "array", "items": move, "maxItems": vips.HISTORY, "description": "Newest first"},
        }
    )


def _vips_schema() -> dict[str, Any]:
    return openapi.json_body(_object({"vips": {"type": "array", "items": _vip_object()}}))


def _vip_schema() -> dict[str, Any]:
    return openapi.json_body(_object({"vip": _vip_object()}))


def _vip_parameters(names: tuple[str, ...]) -> list[dict[str, Any]]:
    what = {"network_id": "Only VIPs of this network", "ip_address": "Only this address (an IP, no prefix)"}
    return [{"name": n, "in": "query", "required": False, "schema": _STRING, "description": what[n]} for n in names]


def _trace_request_schema() -> dict[str, Any]:
    trace = _object(
        {
            "microflow": {**_STRING, "description": "The packet in ovs-ofctl syntax, e.g. arp,arp_spa=192.168.1.10"},
            "ofport": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_OFPORT,
                "description": "Trace from this ofport (default: the port's interface on this host's switch)",
            },
        },
        required=["microflow"],
    )
    return _object({"trace": trace})


def _trace_schema() -> dict[str, Any]:
    trace = _object(
        {
            "verdict": {"type": "string", "enum": ["forwarded", "dropped"]},
            "reason": {"type": ["string", "null"], "description": "The drop reason (a flow cookie's), if dropped"},
            "headline": {**_STRING, "description": "The verdict as `portsec trace` prints it"},
            "packet": {**_STRING, "description": "The packet traced, with what the port filled in"},
            "ofport": {"type": ["integer", "null"], "description": "null when traced through OVN"},
            "ofport_source": _STRING,
            "flows": {**_STRINGS, "description": "The flows taken (native), or OVN's ingress stages (OVN)"},
            "why": _STRING,
            "fix": {"type": ["string", "null"], "description": "The command that would allow it, if one can"},
        }
    )
    return openapi.json_body(_object({"trace": trace}))


def _lint_schema() -> dict[str, Any]:
    finding = _object(
        {
            "severity": {"type": "string", "enum": ["high", "medium", "low", "info"]},
            "check": _STRING,
            "network_id": _STRING,
            "ports": {**_STRINGS, "description": "The ports involved, by name (by ID when unnamed or ambiguous)"},
            "port_ids": _STRINGS,
            "address": _STRING,
            "why": _STRING,
            "fix": {**_STRING, "description": "A portsec command that removes the risk; empty if none is needed"},
        }
    )
    return openapi.json_body(_object({"findings": {"type": "array", "items": finding}}))


def _lint_parameters() -> list[dict[str, Any]]:
    def scope(name: str, what: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": _STRING, "description": what}

    return [
        scope("network_id", "Lint this network (the ports and subnets of it the caller may see)"),
        scope("port_id", "Only the findings that involve this port; its whole network is linted"),
    ]
