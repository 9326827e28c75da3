"""The operator's answers (issue 11): the pair lint's findings and a trace's answer, for the CLI and the API alike.

`portsec pair lint` and ``GET /v2.0/pair-lint`` call :func:`pair_findings`;
`portsec trace` and ``POST /v2.0/ports/{id}/trace`` call :func:`trace_port`. The
CLI gets its ports through a client (embedded or HTTP: it also lints a real
Neutron), the API through the services below with the caller's context, so a
lint over HTTP covers only the ports and subnets the caller may see: it never
shows another project's addresses, at the price of not showing a pair that
covers an address the caller cannot see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from portsec.domain.model import Context, Port, Subnet
from portsec.domain.pair_lint import Finding, lint_pairs
from portsec.guards import guard_from_view
from portsec.openflow.trace import Trace, trace
from portsec.service import networks, ports, subnets
from portsec.service.common import ALL, Listing
from portsec.store.database import Tx

# (names the fix commands use, IDs of the linted ports) -> those names that another port also has.
NamesElsewhere = Callable[[set[str], set[str]], set[str]]
NAMES_PER_QUERY = 500  # names asked about in one query (SQLite binds at most 32,766 values)


# Pair lint -------------------------------------------------------------------------------------------------------


def pair_findings(
    linted: Sequence[Port],
    subnets_of: Sequence[Subnet],
    *,
    network_id: str | None,
    port_id: str | None,
    names_elsewhere: NamesElsewhere,
) -> tuple[Finding, ...]:
    """The lint of ``linted`` (one network's ports, or all), kept to those involving ``port_id`` if given."""
    findings = lint_pairs(linted, subnets_of)
    if network_id:  # names must also be unique beyond this network for the fix commands to find them
        ambiguous = names_elsewhere(names_in_fixes(findings), {p.id for p in linted})
        if ambiguous:
            findings = lint_pairs(linted, subnets_of, ambiguous)
    if port_id:
        findings = tuple(f for f in findings if port_id in f.port_ids)
    return findings


def names_in_fixes(findings: Iterable[Finding]) -> set[str]:
    """Port names the fix commands use (a port without a usable name appears by ID)."""
    return {f.ports[0] for f in findings if f.fix and f.ports[0] != f.port_ids[0]}


def finding_view(f: Finding) -> dict[str, Any]:
    """A finding as the API shows it: the CLI's columns, with its --long ones (network, port IDs)."""
    return {
        "severity": str(f.severity),
        "check": f.check,
        "network_id": f.network_id,
        "ports": list(f.ports),
        "port_ids": list(f.port_ids),
        "address": f.address,
        "why": f.why,
        "fix": f.fix,
    }


def lint_visible(tx: Tx, ctx: Context, network_id: str | None, port_id: str | None) -> tuple[Finding, ...]:
    """The lint over what ``ctx`` may see: one port's findings (its whole network linted), a network's, or all.

    A port or network the caller cannot see is its NotFound, as for ``GET`` of it.
    """
    if port_id:
        network_id = ports.get(tx, ctx, port_id).network_id
    elif network_id:
        networks.get(tx, ctx, network_id)
    listing = Listing(filters={"network_id": [network_id]}) if network_id else ALL
    linted = ports.list_(tx, ctx, listing)
    return pair_findings(
        linted,
        subnets.list_(tx, ctx, listing),
        network_id=network_id,
        port_id=port_id,
        names_elsewhere=lambda names, known: _names_of_other_ports(tx, ctx, names, known),
    )


def _names_of_other_ports(tx: Tx, ctx: Context, names: set[str], known: set[str]) -> set[str]:
    listed = sorted(names)
    shared: set[str] = set()
    for start in range(0, len(listed), NAMES_PER_QUERY):
        chunk = listed[start : start + NAMES_PER_QUERY]
        shared |= {p.name for p in ports.list_(tx, ctx, Listing(filters={"name": chunk})) if p.id not in known}
    return shared


# Trace -----------------------------------------------------------------------------------------------------------


class BadMicroflow(ValueError):
    """A microflow that does not parse (or names what the switch model does not know)."""


def trace_port(port: Mapping[str, Any], microflow: str, ofport: int) -> Trace:
    """``microflow`` sent by ``port`` (the API's view of it) from ``ofport``, through its flows.

    Raises BadMicroflow, whose message says which microflow and why.
    """
    try:
        return trace(guard_from_view(port), microflow, ofport, port=port)
    except ValueError as err:
        raise BadMicroflow(f"Bad microflow {microflow!r}: {err}") from err


def trace_view(result: Trace, ofport: int, ofport_source: str) -> dict[str, Any]:
    """A trace as the API shows it: the lines of `portsec trace`, one key each."""
    return {
        "verdict": "forwarded" if result.forwarded else "dropped",
        "reason": result.verdict.reason,
        "headline": result.headline(),
        "packet": str(result.packet),
        "ofport": ofport,
        "ofport_source": ofport_source,
        "flows": list(result.flows),
        "why": result.why,
        "fix": result.fix,
    }
