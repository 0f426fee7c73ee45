"""federation-bridge: accept identity tokens from someone else's identity
provider and turn them into your own users.

The public surface is small on purpose::

    from federation import Bridge, VerifiedToken
    from federation.errors import FederationError, InvalidToken, KeySetUnavailable, ConfigError

    bridge = Bridge.from_file("federation.yaml")
    vt = bridge.verify(token)            # or: await bridge.averify(token)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._oidc_logout import LogoutToken
    from ._verify import VerifiedToken
    from .bridge import Bridge, WarmUpReport
    from .config import BridgeConfig
    from .events import Event

__all__ = ["Bridge", "BridgeConfig", "Event", "LogoutToken", "VerifiedToken", "WarmUpReport", "__version__"]

__version__ = "0.1.0"


def _beside_a_source_checkout() -> None:
    # Imported from a source checkout (an app run in the clone's root finds this folder
    # before the installed package), federation.providers is the sibling providers/ that
    # pyproject's package-dir maps in at install: let the import system find it there.
    import os

    here = os.path.dirname(__file__)
    root = os.path.dirname(here)
    if not os.path.isdir(os.path.join(here, "providers")) and os.path.isfile(
        os.path.join(root, "providers", "__init__.py")
    ):
        __path__.append(root)


_beside_a_source_checkout()

# ``import federation`` is cheap (a serverless cold start pays for what it uses): the names
# load their modules (httpx, pydantic, cryptography ...) on first use.
_HOMES = {
    "Bridge": "bridge",
    "WarmUpReport": "bridge",
    "BridgeConfig": "config",
    "Event": "events",
    "VerifiedToken": "_verify",
    "LogoutToken": "_oidc_logout",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'federation' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
