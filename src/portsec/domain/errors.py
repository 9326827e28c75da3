"""Errors named after Neutron's exception types, each with its message template.

The class name is the ``type`` of Neutron's error body; the family a class
derives from (BadRequest, NotFound, ...) decides the status code, in one table
at the edge (``portsec.faults``). No HTTP in here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NeutronError(Exception):
    """Base: a message template filled from keyword arguments."""

    message: ClassVar[str] = "An unknown exception occurred."

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.msg = self.message % kwargs if kwargs else self.message
        super().__init__(self.msg)

    @property
    def type(self) -> str:
        return type(self).__name__


# Families -----------------------------------------------------------------


class BadRequest(NeutronError):
    message = "Bad %(resource)s request: %(msg)s."


class NotAuthorized(NeutronError):
    message = "Not authorized."


class NotFound(NeutronError):
    message = "An unknown exception occurred."


class Conflict(NeutronError):
    message = "An unknown exception occurred."


class PreconditionFailed(NeutronError):
    message = "An unknown exception occurred."


class ServiceUnavailable(NeutronError):
    message = "An unknown exception occurred."


# The database ---------------------------------------------------------------


class DatabaseBusy(ServiceUnavailable):
    """The store could not be had in time: a lock held elsewhere, or a server that is down or restarting."""

    message = "The database is busy or unreachable (waited up to %(seconds)s seconds). Try again later."


# Body validation (webob's HTTPBadRequest in Neutron) -------------------------


class HTTPBadRequest(BadRequest):
    """A message produced by attribute processing, passed through as-is."""

    message = "%(msg)s"

    def __init__(self, msg: str) -> None:
        super().__init__(msg=msg)


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


# Resources not found --------------------------------------------------------


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet %(subnet_id)s could not be found."


class PortNotFound(NotFound):
    message = "Port %(port_id)s could not be found."


class SecurityGroupNotFound(NotFound):
    message = "Security group %(id)s does not exist"


# Allowed address pairs and port security ------------------------------------


class AllowedAddressPairExhausted(BadRequest):
    message = "The number of allowed address pair exceeds the maximum %(quota)s."


class AllowedAddressPairsMissingIP(BadRequest):
    message = "AllowedAddressPair must contain ip_address"


class DuplicateAddressPairInRequest(BadRequest):
    message = "Request contains duplicate address pair: mac_address %(mac_address)s ip_address %(ip_address)s."


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."


class PortSecurityAndIPRequiredForSecurityGroups(BadRequest):
    message = "Port security must be enabled and port must have an IP address in order to use security groups."


# IPAM and MAC ----------------------------------------------------------------


class MacAddressInUse(Conflict):
    message = "Unable to complete operation for network %(net_id)s. The mac address %(mac)s is in use."


class NetworkMacAddressGenerationFailure(ServiceUnavailable):
    message = "Unable to generate unique mac on network %(net_id)s."


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network %(net_id)s."


class InvalidIpForNetwork(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for any of the subnets on the specified network."


class InvalidIpForSubnet(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class GatewayConflictWithAllocationPools(Conflict):
    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s"


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class OverlappingAllocationPools(Conflict):
    message = "Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet %(subnet_cidr)s."


# In use ---------------------------------------------------------------------


class NetworkInUse(Conflict):
    message = (
        "Unable to complete operation on network %(net_id)s. There are one or more ports still in use on the network."
    )


class NetworkMTUSubnetConflict(Conflict):
    message = "MTU of %(net_id)s is not valid, subnet requires a minimum of %(mtu)s"


class SubnetInUse(Conflict):
    message = (
        "Unable to complete operation on subnet %(subnet_id)s: "
        "One or more ports have an IP allocation from this subnet."
    )


# Policy and revisions ---------------------------------------------------------


class PolicyNotAuthorized(NotAuthorized):
    message = "%(action)s is disallowed by policy"


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to %(expected)s, but current revision is %(current)s"


class AdminRequired(NotAuthorized):
    message = "User does not have admin privileges: %(reason)s."


# Quotas -------------------------------------------------------------------------


class OverQuota(Conflict):
    """``overs``: the sorted list of resource names, shown as Python prints a list (Neutron's text)."""

    message = "Quota exceeded for resources: %(overs)s."


class TenantQuotaNotFound(NotFound):
    """What Neutron's quota driver raises on DELETE of a project with no override."""

    message = "Quota for project %(tenant_id)s could not be found."


# Agents -------------------------------------------------------------------------


class AgentNotFound(NotFound):
    """neutron-lib's exceptions.agent.AgentNotFound."""

    message = "Agent %(id)s could not be found."
