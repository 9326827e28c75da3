"""Load tempest's and neutron-tempest-plugin's network API tests for a server that builds part of Neutron.

Three things differ from ``tempest run``; none names a test:

* A class with ``force_tenant_isolation`` (pagination and sorting, RBAC, floating IP admin)
  asks Keystone's admin API for a fresh project and user whatever ``[auth]
  use_dynamic_credentials`` says; portsec's identity serves no admin API. Such a class runs
  as its subclass in ``tests.tempest_suites.preprovisioned``, on the accounts of ``[auth]
  test_accounts_file``, in place of the original.
* Some tests use a Neutron feature without checking the extension list first (a tearDown that
  lists routers, subnet pools taken as always there, a quota test that sets a security group
  quota). A request answered 404 for a resource of an extension that ``[network-feature-enabled]
  api_extensions`` does not list, a 400 that refuses an attribute of such an extension, or a
  404 from Keystone's admin API (``/v3/users`` and the like), skips the test and names the
  missing feature. A failure caught before such a skip (in a test body, before its tearDown)
  still fails the test. Any other error is the test's own result.
* neutron-tempest-plugin's ``create_project`` (the quota tests: a fresh project to set quotas on)
  gives a new project id without Keystone. To Neutron, and to portsec, a project is an id that
  an admin may create resources and quotas for; no Keystone is asked.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import unittest
import urllib.parse
import uuid
from typing import Any

import testtools
from tempest import config
from tempest.lib import exceptions
from tempest.lib.common import rest_client

DEFAULT_SUITES = "tempest.api.network neutron_tempest_plugin.api"

# Neutron's REST collections, by the extension alias that provides them.
COLLECTIONS = {
    "routers": "router",
    "floatingips": "router",
    "security-groups": "security-group",
    "security-group-rules": "security-group",
    "subnetpools": "subnet_allocation",
    "address-scopes": "address-scope",
    "address-groups": "address-group",
    "rbac-policies": "rbac-policies",
    "trunks": "trunk",
    "segments": "segment",
    "network-segment-ranges": "network-segment-range",
    "network-ip-availabilities": "network-ip-availability",
    "service-providers": "service-type",
    "availability_zones": "availability_zone",
    "auto-allocated-topology": "auto-allocated-topology",
    "qos": "qos",
    "log": "logging",
    "metering": "metering",
    "local-ips": "local_ip",
    "ndp-proxies": "l3-ndp-proxy",
    "flavors": "flavors",
    "service_profiles": "flavors",
}
# Attributes and quota resources that only an extension adds, by alias.
ATTRIBUTES = {
    "router:external": "external-net",
    "dns_name": "dns-integration",
    "dns_domain": "dns-integration",
    "qos_policy_id": "qos",
    "security_groups": "security-group",
    "provider:network_type": "provider",
    "provider:physical_network": "provider",
    "provider:segmentation_id": "provider",
    "availability_zone_hints": "network_availability_zone",
    "is_default": "auto-allocated-topology",
    # Quota resources (PUT /v2.0/quotas/{project}) of the features that own them.
    "security_group": "security-group",
    "security_group_rule": "security-group",
    "router": "router",
    "floatingip": "router",
    "subnetpool": "subnet_allocation",
    "rbac_policy": "rbac-policies",
    "trunk": "trunk",
}
# Neutron's messages for an attribute a request may not send.
REFUSED_ATTRIBUTE = re.compile(
    r"Attribute '([^']+)' not allowed in (?:POST|PUT)"
    r"|Cannot update read-only attribute ([\w:.-]+)"
    r"|Unrecognized attribute\(s\) '([^']+)'"
)
KEYSTONE_ADMIN = {"projects", "users", "roles", "domains", "groups", "role_assignments", "credentials"}


def _enabled(alias: str) -> bool:
    enabled = config.CONF.network_feature_enabled.api_extensions or []
    return "all" in enabled or alias in enabled


def _path(url: str) -> list[str]:
    path = urllib.parse.urlsplit(url).path
    return [part.removesuffix(".json") for part in path.split("/") if part]


def missing_feature(client: Any, url: str, error: Exception) -> str | None:
    """What the request needs that the server does not build, or None: then the error is the test's."""
    parts = _path(url)
    if isinstance(error, exceptions.NotFound):
        if client.service == "identity" and any(part in KEYSTONE_ADMIN for part in parts):
            return "Keystone's identity admin API (portsec's built-in identity serves password auth only)"
        if client.service == "network" and "v2.0" in parts[:-1]:
            collection = parts[parts.index("v2.0") + 1]
            alias = COLLECTIONS.get(collection)
            if alias and not _enabled(alias):
                return f"/v2.0/{collection}, of extension {alias!r}, which api_extensions does not list"
    if isinstance(error, exceptions.BadRequest) and client.service == "network":
        message = str(getattr(error, "resp_body", "") or error)
        for match in REFUSED_ATTRIBUTE.finditer(message):
            # Every attribute refused must belong to an unlisted extension: an unknown one is a real failure.
            attributes = next(group for group in match.groups() if group).split(", ")
            aliases = [ATTRIBUTES.get(attribute) for attribute in attributes]
            if all(alias and not _enabled(alias) for alias in aliases):
                names, owners = ", ".join(attributes), ", ".join(map(str, aliases))
                return f"attribute(s) {names}, of extension(s) {owners}, which api_extensions does not list"
    return None


class MissingFeature(unittest.SkipTest):
    """A skip for a feature the server does not build; never hides a failure already reported."""


def _install_skips() -> None:
    request = rest_client.RestClient.request
    if getattr(request, "portsec_skips", False):
        return
    # A tearDown that lists routers runs after a test body that may have failed, and testtools reports only
    # the last exception of a test: the skip would hide the failure. A failure or error caught first stands.
    got_user_exception = testtools.RunTest._got_user_exception

    def keep_failure(run: Any, exc_info: Any, tb_label: str = "traceback") -> Any:
        if isinstance(exc_info[1], MissingFeature) and any(
            not isinstance(e, unittest.SkipTest) for e in run._exceptions
        ):
            return run.exception_caught
        return got_user_exception(run, exc_info, tb_label)

    testtools.RunTest._got_user_exception = keep_failure

    def skipping_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return request(self, method, url, *args, **kwargs)
        except (exceptions.NotFound, exceptions.BadRequest) as error:
            feature = missing_feature(self, url, error)
            if feature is None:
                raise
            raise MissingFeature(f"needs {feature} ({method} {url} answered {error.resp.status})") from error

    skipping_request.portsec_skips = True  # type: ignore[attr-defined]
    rest_client.RestClient.request = skipping_request


def _install_create_project() -> None:
    from neutron_tempest_plugin.api import base

    def create_project(cls: Any, name: str | None = None, description: str | None = None) -> dict[str, Any]:
        # Keystone's answer, less what no test reads; Keystone ids are uuid4 hex. Nothing to delete afterwards.
        return {"id": uuid.uuid4().hex, "name": name or f"test_project_{uuid.uuid4().hex[:8]}", "enabled": True}

    base.BaseNetworkTest.create_project = classmethod(create_project)


def _test_modules(package_name: str) -> list[Any]:
    package = importlib.import_module(package_name)
    names = [package_name] if not hasattr(package, "__path__") else []
    if hasattr(package, "__path__"):
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            if info.name.rsplit(".", 1)[-1].startswith("test_"):
                names.append(info.name)
    return [importlib.import_module(name) for name in sorted(names)]


def forces_new_project(cls: type) -> bool:
    return bool(getattr(cls, "force_tenant_isolation", False))


def load(loader: unittest.TestLoader) -> unittest.TestSuite:
    from tests.tempest_suites import preprovisioned

    _install_skips()
    _install_create_project()
    suite = unittest.TestSuite()
    for name in os.environ.get("PORTSEC_TEMPEST_SUITES", DEFAULT_SUITES).split():
        for module in _test_modules(name):
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or not issubclass(cls, unittest.TestCase):
                    continue
                if forces_new_project(cls):
                    cls = preprovisioned.subclass(cls)
                suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite
