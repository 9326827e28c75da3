"""Who is calling: the request context from headers.

``noauth`` is Neutron's: the project comes from X-Project-Id and the roles from
X-Roles; a request with neither runs as admin. Token checking against an
identity service plugs in here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

from portsec.domain.model import DEFAULT_PROJECT_ID, Context


def noauth_context(headers: Mapping[str, str]) -> Context:
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    roles_header = headers.get("x-roles")
    roles: tuple[str, ...]
    if roles_header is None:
        roles = ("admin", "member", "reader") if project is None else ("member", "reader")
    else:
        roles = tuple(r.strip().lower() for r in roles_header.split(",") if r.strip())
    return Context(project_id=project or DEFAULT_PROJECT_ID, is_admin="admin" in roles, roles=roles)
