"""Classes that force a fresh project, run on pre-provisioned accounts instead.

Tempest gives a class with ``force_tenant_isolation`` a new project and user from Keystone's
admin API, whatever ``[auth] use_dynamic_credentials`` says (neutron-tempest-plugin's
``*SearchCriteriaTest`` pagination and sorting classes, and its RBAC and floating IP admin
classes). portsec's built-in identity serves no admin API, so each such class runs here as a
subclass, with this module's name in its test id, on the accounts of ``[auth]
test_accounts_file``. ``.ci/tempest`` runs one class at a time and every class deletes what it
created, so the primary project holds only the class's own resources, as a fresh project would.
"""

from __future__ import annotations

from typing import Any

_classes: dict[str, type] = {}


def subclass(original: type) -> type:
    """The pre-provisioned subclass of ``original``, a module attribute under the original's name."""
    name = original.__name__
    if name in _classes and _classes[name].__bases__ != (original,):
        name = f"{original.__module__.rsplit('.', 1)[-1]}_{name}"
    if name not in _classes:
        attributes: dict[str, Any] = {
            "force_tenant_isolation": False,
            "__module__": __name__,
            "__doc__": original.__doc__,
        }
        cls = type(name, (original,), attributes)
        cls.__qualname__ = name
        _classes[name] = cls
        globals()[name] = cls
    return _classes[name]
