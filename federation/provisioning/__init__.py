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

import warnings
from typing import Any

from ._decide import DeprovisionMode, LoginFacts, LoginPlan, Resolution
from ._default import DefaultMapping
from ._plan import ExistingView, Mapper
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
    "check_values",
]

#: Planner internals once exported here: still importable, with a DeprecationWarning.
_DEPRECATED = {
    "StoreCall": "..storage._ops",
    "drive": "..storage",
    "adrive": "..storage",
    "login_plan": "._plan",
    "deprovision_plan": "._plan",
    "plan_login": "._decide",
    "plan_deprovision": "._decide",
    "resolve": "._decide",
}


def __getattr__(name: str) -> Any:
    module = _DEPRECATED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"federation.provisioning.{name} is an internal of the provisioner and will be removed; "
        "use Provisioner (or Bridge.login); typed store operations and their drivers "
        "are in federation.storage",
        DeprecationWarning,
        stacklevel=2,
    )
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
