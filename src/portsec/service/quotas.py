"""Quotas: the check every create makes, and Neutron's quota API (show, defaults, details, list, set, reset).

Who may do what (Neutron's defaults): anyone reads their own project's quotas;
only an admin reads another project's, lists them all, sets or resets them.
Neutron's ``get_quota`` rule also names a project manager, but Neutron checks
it against the caller's own project, so it would let a manager read every
project's quotas; portsec keeps to the rule's intent (the manager's own
project) and answers 403 for the others.
"""

from __future__ import annotations

import os
from typing import Any

from portsec.domain import errors
from portsec.domain import quotas as rules
from portsec.domain.model import Context
from portsec.domain.quotas import QuotaDefaults
from portsec.store import quotas as store
from portsec.store.database import Tx

# Configuration of `portsec serve` workers and of the CLI: Neutron's [QUOTAS] quota_<resource>.
ENV = {resource: f"PORTSEC_QUOTA_{resource.upper()}" for resource in rules.RESOURCES}


def defaults_from_environment() -> QuotaDefaults:
    """Neutron's defaults, overridden by PORTSEC_QUOTA_NETWORK, _SUBNET and _PORT; a negative value is -1."""
    base = QuotaDefaults().as_dict()
    return QuotaDefaults(**{r: max(int(os.environ.get(ENV[r], base[r])), rules.UNLIMITED) for r in rules.RESOURCES})


def environment(defaults: QuotaDefaults) -> dict[str, str]:
    """The variables that hand ``defaults`` to another process."""
    return {ENV[r]: str(limit) for r, limit in defaults.as_dict().items()}


def check_create(tx: Tx, defaults: QuotaDefaults, project_id: str, resource: str) -> None:
    """One more ``resource`` for ``project_id``, or OverQuota; call after body validation, before policy.

    Earlier items of a bulk create are rows of this transaction already, so a
    bulk that does not fit fails on its first item over the limit and rolls back whole.
    """
    default = getattr(defaults, resource)
    limit, used = store.limit_and_usage(tx.conn, project_id, resource, default)
    if rules.over(limit, used):
        raise errors.OverQuota(overs=[resource])


def _refuse(action: str) -> errors.PolicyNotAuthorized:
    return errors.PolicyNotAuthorized(action=f"rule:{action}")


def _check_read(ctx: Context, project_id: str) -> None:
    if project_id != ctx.project_id and not ctx.is_admin:
        raise _refuse("get_quota")


def show(tx: Tx, ctx: Context, defaults: QuotaDefaults, project_id: str) -> dict[str, int]:
    _check_read(ctx, project_id)
    rules.check_project_id(project_id)
    return rules.effective(defaults, store.overrides(tx.conn, project_id))


def default(ctx: Context, defaults: QuotaDefaults, project_id: str) -> dict[str, int]:
    _check_read(ctx, project_id)
    return rules.effective(defaults, {})


def details(tx: Tx, ctx: Context, defaults: QuotaDefaults, project_id: str) -> dict[str, dict[str, int]]:
    """Limit, used and reserved per resource; nothing is ever reserved (the check is in the creating transaction)."""
    if project_id != ctx.project_id and not ctx.is_admin:
        raise errors.AdminRequired(reason="Only admin is authorized to access quotas for another project")
    rules.check_project_id(project_id)
    limits = rules.effective(defaults, store.overrides(tx.conn, project_id))
    used = store.usage(tx.conn, project_id)
    return {r: {"limit": limits[r], "used": used[r], "reserved": 0} for r in rules.RESOURCES}


def list_(tx: Tx, ctx: Context, defaults: QuotaDefaults) -> list[dict[str, Any]]:
    """The projects that have overrides, each with all its limits, as Neutron lists them."""
    if not ctx.is_admin:
        raise _refuse("get_quota")
    return [
        {**rules.effective(defaults, overrides), "project_id": project_id, "tenant_id": project_id}
        for project_id, overrides in store.all_overrides(tx.conn).items()
    ]


def check_update(ctx: Context) -> None:
    if not ctx.is_admin:
        raise _refuse("update_quota")


def update(tx: Tx, ctx: Context, defaults: QuotaDefaults, project_id: str, body: Any) -> dict[str, int]:
    """Neutron's order: policy, then the body, then (unless force) no limit below what is in use."""
    check_update(ctx)
    requested, force = rules.parse_update(body)
    rules.check_project_id(project_id, stored=True)
    store.lock(tx.conn, project_id)  # no create of this project between the usage check and the new limits
    if not force:
        used = store.usage(tx.conn, project_id) if requested else {}
        for resource, limit in requested.items():
            if rules.over(limit, used[resource], wanted=0):
                raise errors.HTTPBadRequest(
                    f"Quota limit {limit} for {resource} must be greater than or equal to already used {used[resource]}"
                )
    for resource, limit in requested.items():
        store.set_limit(tx.conn, project_id, resource, limit)
    return rules.effective(defaults, store.overrides(tx.conn, project_id))


def delete(tx: Tx, ctx: Context, project_id: str) -> None:
    """Back to the defaults; 404 when the project had no override, as Neutron's driver answers."""
    if not ctx.is_admin:
        raise _refuse("delete_quota")
    rules.check_project_id(project_id)
    if store.delete(tx.conn, project_id) == 0:
        raise errors.TenantQuotaNotFound(tenant_id=project_id)
