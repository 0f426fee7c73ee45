"""Testing toolkit: a mock identity provider and helpers, for your tests and ours.

::

    from federation.testing import MockIdP

    idp = MockIdP(issuer="https://idp.test", audience="my-client")
    bridge = idp.bridge()                       # wired to the mock, no network
    assert bridge.verify(idp.mint(sub="u1")).subject == "u1"

Must not: be imported by the library's runtime code paths (only the CLI demo
uses it).
"""

from __future__ import annotations

from ._clock import FrozenClock
from ._keys import SigningKey, generate_signing_key
from ._mockidp import MockIdP, mock_transport

__all__ = ["FrozenClock", "MockIdP", "SigningKey", "generate_signing_key", "mock_transport"]
