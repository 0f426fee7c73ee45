"""federation-bridge: accept identity tokens from someone else's identity
provider and turn them into your own users.

The public surface is small on purpose::

    from federation import Bridge, VerifiedToken
    from federation.errors import FederationError, InvalidToken, KeySetUnavailable, ConfigError

    bridge = Bridge.from_file("federation.yaml")
    vt = bridge.verify(token)            # or: await bridge.averify(token)
"""

from __future__ import annotations

from ._verify import VerifiedToken
from .bridge import Bridge, WarmUpReport
from .config import BridgeConfig
from .events import Event

__all__ = ["Bridge", "BridgeConfig", "Event", "VerifiedToken", "WarmUpReport", "__version__"]

__version__ = "0.1.0"
