"""Provisioning: verified, mapped tokens become local users, through a storage protocol.

::

    from federation import Bridge

    bridge = Bridge.from_file("federation.yaml")      # storage:, mapping:, provisioning:
    result = bridge.login(token)                      # verify + map + provision
    result.user.id, result.user.roles, result.created

The layers, each in its own module: ``_policy`` (what may be done, and which
values may be stored), ``_decide`` (the pure decision: whose login, which
refusal, which writes), ``_plan`` (the sans-I/O order of store calls, driven
sync or async), ``_shell`` (transactions, retries, audit). The store is any
implementation of :mod:`federation.storage`'s protocol.

Guide: ``docs/provisioning.md``.
"""

from __future__ import annotations

from ._decide import (
    DeprovisionMode,
    LoginFacts,
    LoginPlan,
    Resolution,
    plan_deprovision,
    plan_login,
    resolve,
)
from ._default import DefaultMapping
from ._plan import ExistingView, Mapper, StoreCall, adrive, deprovision_plan, drive, login_plan
from ._policy import ProvisioningPolicy, check_values
from ._result import DeprovisionResult, LoginResult
from ._shell import Provisioner

__all__ = [
    "DefaultMapping",
    "DeprovisionMode",
    "DeprovisionResult",
    "ExistingView",
    "LoginFacts",
    "LoginPlan",
    "LoginResult",
    "Mapper",
    "Provisioner",
    "ProvisioningPolicy",
    "Resolution",
    "StoreCall",
    "adrive",
    "check_values",
    "deprovision_plan",
    "drive",
    "login_plan",
    "plan_deprovision",
    "plan_login",
    "resolve",
]
