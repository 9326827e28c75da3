"""The client the CLI uses with --endpoint: the same calls, over the Neutron v2.0 API."""

from __future__ import annotations

import builtins  # `list` below is a method of the class
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from portsec.domain.resources import PLURALS
from portsec.faults import remote_error


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        fault = body.get("NeutronError") or next(iter(body.values()))
        message = fault["message"]
    except (ValueError, KeyError, StopIteration, AttributeError, TypeError):
        message = response.text or response.reason_phrase
    raise remote_error(response.status_code, message)


class HTTPClient:
    def __init__(self, endpoint: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> None:
        base = endpoint.rstrip("/")
        base = base if base.endswith("/v2.0") else base + "/v2.0"
        self.http = httpx.Client(base_url=base, headers=dict(headers or {}), timeout=timeout)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        _raise_for(response)
        return response.json() if response.content else None

    def create(self, resource: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/{PLURALS[resource]}", json={resource: dict(body)})[resource]

    def get(self, resource: str, resource_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{PLURALS[resource]}/{resource_id}")[resource]

    def list(self, resource: str, filters: Mapping[str, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
        params = [
            (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, vs in (filters or {}).items() for v in vs
        ]
        return self._call("GET", f"/{PLURALS[resource]}", params=params)[PLURALS[resource]]

    def update(self, resource: str, resource_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/{PLURALS[resource]}/{resource_id}", json={resource: dict(body)})[resource]

    def delete(self, resource: str, resource_id: str) -> None:
        self._call("DELETE", f"/{PLURALS[resource]}/{resource_id}")

    def project_id(self) -> str:
        """The caller's project, from Neutron's quota API "who am I" (noauth or token alike)."""
        return str(self._call("GET", "/quotas/project")["project"]["project_id"])

    def get_quota(self, project_id: str, which: str = "") -> dict[str, Any]:
        """``which``: "" (the limits), "default" or "details"."""
        path = "/".join(["/quotas", quote(project_id, safe=""), *([which] if which else [])])
        return self._call("GET", path)["quota"]

    def update_quota(self, project_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/quotas/{quote(project_id, safe='')}", json={"quota": dict(body)})["quota"]

    def delete_quota(self, project_id: str) -> None:
        self._call("DELETE", f"/quotas/{quote(project_id, safe='')}")

    def list_agents(self, filters: Mapping[str, Sequence[Any]] | None = None) -> builtins.list[dict[str, Any]]:
        params = [(k, str(v)) for k, vs in (filters or {}).items() for v in vs]
        return self._call("GET", "/agents", params=params)["agents"]

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        return self._call("GET", f"/agents/{quote(agent_id, safe='')}")["agent"]

    def update_agent(self, agent_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/agents/{quote(agent_id, safe='')}", json={"agent": dict(body)})["agent"]

    def delete_agent(self, agent_id: str) -> None:
        self._call("DELETE", f"/agents/{quote(agent_id, safe='')}")

    def list_vips(self, network_id: str | None = None, ip_address: str | None = None) -> builtins.list[dict[str, Any]]:
        given = {"network_id": network_id, "ip_address": ip_address}
        return self._call("GET", "/vips", params={k: v for k, v in given.items() if v is not None})["vips"]

    def get_vip(self, ip_address: str, network_id: str | None = None) -> dict[str, Any]:
        params = {"network_id": network_id} if network_id is not None else {}
        return self._call("GET", f"/vips/{quote(ip_address, safe='')}", params=params)["vip"]

    def port_sources(self, port_id: str) -> builtins.list[dict[str, Any]]:
        """The sources in the server's drops answer (which reads the switch of the server's host)."""
        return self._call("GET", f"/ports/{quote(port_id, safe='')}/drops").get("sources", [])


def password_token(
    auth_url: str,
    username: str,
    password: str,
    project: str,
    user_domain: str = "Default",
    project_domain: str = "Default",
    timeout: float = 30.0,
) -> tuple[str, str | None]:
    """A project-scoped token from a Keystone v3 password login, and the catalog's network endpoint."""
    url = auth_url.rstrip("/")
    url = url if url.endswith("/v3") else url + "/v3"
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "password": password, "domain": {"name": user_domain}}},
            },
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}},
        }
    }
    try:
        response = httpx.post(url + "/auth/tokens", json=body, timeout=timeout)
    except httpx.HTTPError as err:
        raise remote_error(503, f"identity service at {url}: {err}") from None
    if response.status_code == 401:
        raise remote_error(401, f"The identity service at {url} refused user {username} in project {project}.")
    _raise_for(response)
    catalog = response.json().get("token", {}).get("catalog", [])
    network = next(
        (e["url"] for s in catalog if s.get("type") == "network" for e in s.get("endpoints", [])
         if e.get("interface") == "public"),
        None,
    )  # fmt: skip
    return response.headers["X-Subject-Token"], network
