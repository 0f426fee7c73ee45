"""The pytest plugin of the testing toolkit (registered through the ``pytest11`` entry point).

Installed with ``federation-bridge``, it gives every test suite two fixtures (the
``mock_idp`` fixture's install needs respx: ``pip install 'federation-bridge[testing]'``;
without it pytest still runs and the fixture fails saying so):

``mock_idp``
    A factory: ``idp = mock_idp(issuer=..., audience=..., **MockIdP options)``
    returns a :class:`~federation.testing.MockIdP` that is already installed
    (``with idp:``, through respx) so any httpx client in the test, including
    the ones your application's :class:`~federation.Bridge` creates, is
    served by it, and unmocked hosts fail instead of reaching the network.
    Pass ``install=False`` to get a mock that is not installed (for
    ``idp.transport()``/``idp.serve()`` only). ``mock_idp.for_provider(name,
    ...)`` builds one with a provider's claim shapes. At teardown every mock
    is uninstalled, its loopback server stopped and its clients closed.

``federation_clock``
    A :class:`~federation.testing.FrozenClock` at 2027-01-15T08:00:00Z. Give it
    to the mock (``mock_idp(clock=federation_clock)``) and to your bridge
    (``Bridge(..., clock=federation_clock)``), then ``federation_clock.advance(s)``.

The names avoid the usual ``idp``/``clock``/``bridge``. Disable the plugin with
``-p no:federation``.

Must not: import heavy modules at pytest start-up (imports happen in fixtures).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._clock import FrozenClock
    from ._mockidp import MockIdP

__all__ = ["MockIdPFactory", "federation_clock", "mock_idp"]


class MockIdPFactory:
    """Builds mock issuers for one test and undoes them at teardown."""

    def __init__(self) -> None:
        self._made: list[MockIdP] = []

    def __call__(
        self,
        issuer: str = "https://idp.test",
        audience: str = "my-client",
        *,
        install: bool = True,
        **options: Any,
    ) -> MockIdP:
        """A new :class:`~federation.testing.MockIdP` (installed unless ``install=False``)."""
        from ._mockidp import MockIdP

        return self._keep(MockIdP(issuer, audience, **options), install)

    def for_provider(self, name: str, /, *, install: bool = True, **params: Any) -> MockIdP:
        """A mock issuer with provider ``name``'s claim shapes (see ``MockIdP.for_provider``)."""
        from ._mockidp import MockIdP

        return self._keep(MockIdP.for_provider(name, **params), install)

    @property
    def made(self) -> tuple[MockIdP, ...]:
        """Every mock built in this test, oldest first."""
        return tuple(self._made)

    def _keep(self, idp: MockIdP, install: bool) -> MockIdP:
        self._made.append(idp)
        if install:
            _require_respx()
            idp.__enter__()
        return idp

    def close(self) -> None:
        """Uninstall, stop and close every mock (newest first)."""
        while self._made:
            self._made.pop().close()


def _require_respx() -> None:
    """Installing a mock into httpx needs respx; without it, say which extra brings it."""
    try:
        import respx  # noqa: F401 - only whether it imports
    except ImportError:
        missing = True
    else:
        missing = False
    if missing:  # outside the except: no "during handling" chain in the report
        from ._mockidp import RESPX_MISSING

        pytest.fail(f"mock_idp: {RESPX_MISSING}; mock_idp(install=False) works without it", pytrace=False)


@pytest.fixture
def mock_idp() -> Iterator[MockIdPFactory]:
    """A factory of mock identity providers, cleaned up after the test."""
    factory = MockIdPFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def federation_clock() -> FrozenClock:
    """A frozen clock at 2027-01-15T08:00:00Z (Unix 1800000000)."""
    from ._clock import FrozenClock

    return FrozenClock(1_800_000_000.0)
