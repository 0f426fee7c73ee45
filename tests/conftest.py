"""Shared fixtures. Tokens and key sets come from the project's own testing
toolkit (``federation.testing``): our tests dogfood what our users get.

Rules every test follows:
* no network: key sets are served by MockIdP through httpx.MockTransport or respx;
* the clock is injected (``clock`` fixture), never read from the wall in assertions;
* external material (``../shared/``) is read in place; when it is absent the test
  skips with a reason, unless FEDERATION_REQUIRE_SERVICES=1 (CI), where it fails.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from federation import Bridge
from federation.events import Event
from federation.testing import FrozenClock, MockIdP

REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
SHARED_DIR = Path(os.environ.get("FEDERATION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def require_path(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; else skip (laptop) or fail (CI)."""
    if path.exists():
        return path
    message = f"{what} not found at {path} (set FEDERATION_SHARED_DIR)"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared/ reference material (vectors, fixtures)."""
    return require_path(SHARED_DIR, "shared reference material")


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at 2027-01-15T08:00:00Z, shared by the mock issuer and the bridge."""
    return FrozenClock(1_800_000_000.0)


@pytest.fixture
def idp(clock: FrozenClock) -> MockIdP:
    """A generic OIDC mock issuer with an RS256 key and an ES256 key."""
    return MockIdP(issuer="https://idp.test", audience="my-client", algorithms=["ES256"], clock=clock)


class EventLog(list[Event]):
    """Collects bridge events; ``names()`` lists their names in order."""

    def names(self) -> list[str]:
        return [e.name for e in self]


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def make_bridge(idp: MockIdP, clock: FrozenClock, events: EventLog) -> Iterator[Callable[..., Bridge]]:
    """Build a bridge trusting ``idp`` (or a given config), wired to the mock transport.

    ``make_bridge(keys={...}, leeway=..., issuer={...overrides...}, config={...})``
    """
    built: list[Bridge] = []

    def factory(
        *, config: dict[str, Any] | None = None, issuer: dict[str, Any] | None = None, **top: Any
    ) -> Bridge:
        cfg = config if config is not None else {"issuers": [idp.issuer_config(**(issuer or {}))], **top}
        bridge = idp.bridge(config=cfg, on_event=events.append)
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


@pytest.fixture
def bridge(make_bridge: Callable[..., Bridge]) -> Bridge:
    """A bridge trusting the ``idp`` fixture with default settings."""
    return make_bridge()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run with ``@pytest.mark.anyio`` on asyncio (anyio's pytest plugin)."""
    return "asyncio"


# Key generation dominates the key-cache suites (RSA ~40 ms): with this fixture every test
# still gets its own MockIdP, but the n-th key of an algorithm generated in a test is the
# same key material in every test (keys stay distinct within a test).
_KEY_POOL: dict[str, list[Any]] = {}


@pytest.fixture
def reuse_generated_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in (``pytestmark = pytest.mark.usefixtures("reuse_generated_keys")``) to pooled test keys."""
    from federation.testing import _mockidp

    real = _mockidp.generate_signing_key
    used: dict[str, int] = {}

    def generate(alg: str = "RS256", **options: Any) -> Any:
        if options:
            return real(alg, **options)
        pool = _KEY_POOL.setdefault(alg, [])
        n = used[alg] = used.get(alg, -1) + 1
        while len(pool) <= n:
            pool.append(real(alg))
        return pool[n]

    monkeypatch.setattr(_mockidp, "generate_signing_key", generate)


@pytest.fixture(params=["sync", "async"])
def check(request: pytest.FixtureRequest) -> Callable[[Bridge, str], Any]:
    """Verify through ``bridge.verify`` or ``bridge.averify`` (each test runs both)."""
    if request.param == "sync":
        return lambda bridge, token: bridge.verify(token)
    return lambda bridge, token: asyncio.run(bridge.averify(token))
