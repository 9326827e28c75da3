"""The OpenAPI description of the Neutron v2.0 routes: bodies, query strings and errors.

The routes read raw requests so that validation follows Neutron's order and
messages (``portsec.domain.attributes``); these pydantic models describe the
same shapes for the served ``/openapi.json`` and are never used to validate.
Booleans are described as Neutron's converter takes them (true/false, "yes",
"0", 1, ...), so a value the schema refuses is one the server refuses too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from portsec.api import listing
from portsec.domain.attributes import NAME_MAX_LEN
from portsec.domain.quotas import MAX_LIMIT as QUOTA_MAX
from portsec.domain.quotas import UNLIMITED as QUOTA_UNLIMITED
from portsec.domain.resources import IPV6_MODES, MAX_HOST_ROUTES, MAX_NAMESERVERS, VNIC_TYPES

Name = Annotated[str, Field(max_length=NAME_MAX_LEN)]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Flag = Annotated[
    bool | str | Literal[0, 1],
    Field(description="A boolean; also 'true'/'false', 't'/'f', 'yes'/'no', 'on'/'off', '1'/'0', 1/0"),
]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Shared pieces ---------------------------------------------------------------------------------------------------


class _Standard(_Response):
    """The attributes every Neutron resource shows (standard-attr-*, project-id)."""

    tenant_id: str | None = None
    project_id: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    revision_number: int | None = None


class AllowedAddressPairRequest(_Request):
    ip_address: str = Field(description="An IP address or CIDR; not multicast")
    mac_address: str | None = Field(None, description="Defaults to the port's MAC; not multicast")


class AllowedAddressPair(_Response):
    mac_address: str
    ip_address: str


class FixedIpRequest(_Request):
    subnet_id: Uuid | None = None
    ip_address: str | None = None


class FixedIp(_Response):
    subnet_id: Uuid
    ip_address: str


class AllocationPool(_Request):
    start: str
    end: str


class HostRoute(_Request):
    destination: str
    nexthop: str


class Link(_Response):
    rel: Literal["next", "previous", "self"]
    href: str


class ErrorDetail(_Response):
    type: str = Field(description="Neutron's exception class name, e.g. PortNotFound")
    message: str
    detail: str = ""


class NeutronErrorBody(_Response):
    NeutronError: ErrorDetail


class KeystoneErrorDetail(_Response):
    code: int
    title: str
    message: str


class KeystoneErrorBody(_Response):
    """401 when identity is on and the request has no valid X-Auth-Token."""

    error: KeystoneErrorDetail


# 0 (or none given): the largest, 1500; an IPv4 subnet needs at least 68, an IPv6 one 1280.
Mtu = Annotated[int, Field(ge=0, le=1500)]


# Networks ----------------------------------------------------------------------------------------------------------


class NetworkCreate(_Request):
    name: Name = ""
    admin_state_up: Flag = True
    shared: Flag = Field(False, description="Admin only")
    port_security_enabled: Flag = True
    mtu: Mtu = 0
    description: Name = ""
    project_id: Name | None = None
    tenant_id: Name | None = None


class NetworkUpdate(_Request):
    name: Name | None = None
    admin_state_up: Flag | None = None
    shared: Flag | None = None
    port_security_enabled: Flag | None = None
    mtu: Mtu | None = None
    description: Name | None = None


class Network(_Standard):
    id: Uuid | None = None
    name: str | None = None
    subnets: list[Uuid] | None = None
    admin_state_up: bool | None = None
    status: str | None = None
    shared: bool | None = None
    port_security_enabled: bool | None = None
    mtu: int | None = None
    router_external: bool | None = Field(None, alias="router:external")


# Subnets -----------------------------------------------------------------------------------------------------------


class SubnetCreate(_Request):
    network_id: Uuid
    ip_version: Literal[4, 6, "4", "6"]
    cidr: str
    name: Name = ""
    gateway_ip: str | None = None
    allocation_pools: list[AllocationPool] | None = None
    dns_nameservers: Annotated[list[str], Field(max_length=MAX_NAMESERVERS)] | None = None
    host_routes: Annotated[list[HostRoute], Field(max_length=MAX_HOST_ROUTES)] | None = None
    enable_dhcp: Flag = True
    ipv6_ra_mode: Literal[IPV6_MODES] | None = None  # type: ignore[valid-type]
    ipv6_address_mode: Literal[IPV6_MODES] | None = None  # type: ignore[valid-type]
    subnetpool_id: None = None
    description: Name = ""
    project_id: Name | None = None
    tenant_id: Name | None = None


class SubnetUpdate(_Request):
    name: Name | None = None
    gateway_ip: str | None = None
    allocation_pools: list[AllocationPool] | None = None
    dns_nameservers: Annotated[list[str], Field(max_length=MAX_NAMESERVERS)] | None = None
    host_routes: Annotated[list[HostRoute], Field(max_length=MAX_HOST_ROUTES)] | None = None
    enable_dhcp: Flag | None = None
    description: Name | None = None


class Subnet(_Standard):
    id: Uuid | None = None
    name: str | None = None
    network_id: Uuid | None = None
    ip_version: Literal[4, 6] | None = None
    cidr: str | None = None
    gateway_ip: str | None = None
    allocation_pools: list[AllocationPool] | None = None
    enable_dhcp: bool | None = None
    dns_nameservers: list[str] | None = None
    host_routes: list[HostRoute] | None = None
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    subnetpool_id: str | None = None


# Ports -----------------------------------------------------------------------------------------------------------


class PortCreate(_Request):
    network_id: Uuid
    name: Name = ""
    admin_state_up: Flag = True
    mac_address: str | None = Field(None, description="Generated when absent or null; the network owner's")
    fixed_ips: list[FixedIpRequest] | None = None
    device_id: Name = ""
    device_owner: Name = Field("", description="'network:*' owners are trusted (no anti-spoofing)")
    security_groups: list[Uuid] | None = Field(None, description="No security groups exist yet: only []")
    port_security_enabled: Flag | None = Field(None, description="Defaults to the network's")
    allowed_address_pairs: list[AllowedAddressPairRequest] | None = Field(
        None, description="At most --max-allowed-address-pairs (10) entries"
    )
    binding_host_id: Name | None = Field(None, alias="binding:host_id", description="Admin only")
    binding_vnic_type: Literal[VNIC_TYPES] = Field("normal", alias="binding:vnic_type")  # type: ignore[valid-type]
    description: Name = ""
    project_id: Name | None = None
    tenant_id: Name | None = None


class PortUpdate(_Request):
    name: Name | None = None
    admin_state_up: Flag | None = None
    mac_address: str | None = None
    fixed_ips: list[FixedIpRequest] | None = None
    device_id: Name | None = None
    device_owner: Name | None = None
    security_groups: list[Uuid] | None = None
    port_security_enabled: Flag | None = None
    allowed_address_pairs: list[AllowedAddressPairRequest] | None = None
    binding_host_id: Name | None = Field(None, alias="binding:host_id")
    binding_vnic_type: Literal[VNIC_TYPES] | None = Field(None, alias="binding:vnic_type")  # type: ignore[valid-type]
    description: Name | None = None


class Port(_Standard):
    id: Uuid | None = None
    name: str | None = None
    network_id: Uuid | None = None
    mac_address: str | None = None
    admin_state_up: bool | None = None
    status: str | None = None
    device_id: str | None = None
    device_owner: str | None = None
    fixed_ips: list[FixedIp] | None = None
    allowed_address_pairs: list[AllowedAddressPair] | None = None
    security_groups: list[Uuid] | None = None
    port_security_enabled: bool | None = None
    ip_allocation: str | None = None
    binding_host_id: str | None = Field(None, alias="binding:host_id", description="Shown to admins only")
    binding_vif_type: str | None = Field(None, alias="binding:vif_type")
    binding_vif_details: dict[str, Any] | None = Field(None, alias="binding:vif_details")
    binding_vnic_type: str | None = Field(None, alias="binding:vnic_type")
    binding_profile: dict[str, Any] | None = Field(None, alias="binding:profile")


# Quotas ------------------------------------------------------------------------------------------------------------

QuotaLimit = Annotated[
    Annotated[int, Field(ge=QUOTA_UNLIMITED, le=QUOTA_MAX)] | Annotated[str, Field(pattern=r"^[+-]?[0-9]+$")],
    Field(description=f"A count, or {QUOTA_UNLIMITED} for no limit; also as a string of digits"),
]


class QuotaUpdate(_Request):
    network: QuotaLimit | None = None
    subnet: QuotaLimit | None = None
    port: QuotaLimit | None = None
    force: Any = Field(None, description="true: set the limits even below what the project uses")
    check_limit: Any = Field(None, description="Accepted and ignored: usage is always checked unless force is true")


class Quota(_Response):
    network: int
    subnet: int
    port: int


class ProjectQuota(Quota):
    project_id: str
    tenant_id: str


class QuotaUsage(_Response):
    limit: int
    used: int
    reserved: int = Field(description="Always 0: the count is checked inside the creating transaction")


class QuotaDetails(_Response):
    network: QuotaUsage
    subnet: QuotaUsage
    port: QuotaUsage


_QUOTA_MODELS: list[type[BaseModel]] = [QuotaUpdate, Quota, ProjectQuota, QuotaDetails]


def quota_request() -> dict[str, Any]:
    return {"requestBody": {"required": True, **json_body(_envelope("quota", _ref(QuotaUpdate)))}}


def quota(details: bool = False) -> dict[str, Any]:
    return json_body(_envelope("quota", _ref(QuotaDetails if details else Quota)))


def quota_list() -> dict[str, Any]:
    return json_body(_envelope("quotas", {"type": "array", "items": _ref(ProjectQuota)}))


def current_project(key: str) -> dict[str, Any]:
    """Neutron's "who am I" of the quota API: ``{"project": {"project_id": ...}}`` (or tenant)."""
    return json_body(_envelope(key, _envelope(f"{key}_id", {"type": "string"})))


# Envelopes ---------------------------------------------------------------------------------------------------------

_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel], type[BaseModel]]] = {
    "network": (NetworkCreate, NetworkUpdate, Network),
    "subnet": (SubnetCreate, SubnetUpdate, Subnet),
    "port": (PortCreate, PortUpdate, Port),
}
_ERROR_MODELS: list[type[BaseModel]] = [NeutronErrorBody, KeystoneErrorBody]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def components() -> dict[str, Any]:
    """Every model above as OpenAPI components (added to FastAPI's own)."""
    models = [m for triple in _MODELS.values() for m in triple] + _QUOTA_MODELS + _ERROR_MODELS
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}", by_alias=True
    )
    return dict(top.get("$defs", {}))


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(NeutronErrorBody)}}}


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "Identity is on and the request has no valid X-Auth-Token",
        "content": {"application/json": {"schema": _ref(KeystoneErrorBody)}},
    }
}


def errors(*statuses: int) -> dict[int | str, Any]:
    text = {
        400: "Bad request: malformed JSON, unknown or read-only attribute, invalid value (Neutron's message)",
        403: "Refused by policy (PolicyNotAuthorized)",
        404: "No such resource, or not visible to the caller",
        409: "Conflict (over quota, address in use, pairs with port security off, ...)",
        412: "If-Match revision_number does not match (RevisionNumberConstraintFailed)",
        413: "Body larger than the server's limit",
        503: "No free MAC address could be generated",
    }
    return {**UNAUTHORIZED, **{s: _error(text[s]) for s in statuses}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _envelope(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: schema}, "additionalProperties": False}


def create_request(resource: str, plural: str) -> dict[str, Any]:
    create = _ref(_MODELS[resource][0])
    one = _envelope(resource, create)
    bulk = _envelope(plural, {"type": "array", "items": create})
    return {"requestBody": {"required": True, **json_body({"oneOf": [one, bulk]})}}


def update_request(resource: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, **json_body(_envelope(resource, _ref(_MODELS[resource][1])))}}


def one(resource: str) -> dict[str, Any]:
    return json_body(_envelope(resource, _ref(_MODELS[resource][2])))


def created(resource: str, plural: str) -> dict[str, Any]:
    item = _ref(_MODELS[resource][2])
    bulk = _envelope(plural, {"type": "array", "items": item})
    return json_body({"oneOf": [_envelope(resource, item), bulk]})


def many(resource: str, plural: str) -> dict[str, Any]:
    return json_body(
        {
            "type": "object",
            "required": [plural],
            "properties": {
                plural: {"type": "array", "items": _ref(_MODELS[resource][2])},
                f"{plural}_links": {"type": "array", "items": _ref(Link)},
            },
            "additionalProperties": False,
        }
    )


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _strings() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}}


FIELDS = _query("fields", _strings(), "Return only these attributes (repeatable)")
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "revision_number=N: refuse with 412 unless the stored revision is N",
}


def list_parameters(resource: str) -> list[dict[str, Any]]:
    """Neutron's list query string: filters (repeat a key to OR values), fields, sorting, pages."""
    filters = [
        _query(key, _strings(), "Filter: exact match, repeat to OR"
               + ("; entries are ip_address=A or subnet_id=S" if key == "fixed_ips" else ""))
        for key in sorted(listing.FILTERABLE[resource])
    ]  # fmt: skip
    sortable = sorted(listing.SORTABLE[resource])
    return [
        *filters,
        FIELDS,
        _query("sort_key", {"type": "array", "items": {"type": "string", "enum": sortable}}, "Sort keys"),
        _query("sort_dir", {"type": "array", "items": {"type": "string", "enum": ["asc", "desc"]}}, "One per key"),
        _query("limit", {"type": "integer", "minimum": 0}, "Page size; 0 or absent: no pages"),
        _query("marker", {"type": "string"}, "Id of the last item of the previous page"),
        _query("page_reverse", {"type": "string"}, "'True': the page before the marker"),
    ]
