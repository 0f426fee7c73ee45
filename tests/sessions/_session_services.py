"""Where the session tests find their services (imported by name: conftest modules collide)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from federation.errors import StorageError
from federation.storage import MemorySessionStore

REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("FEDERATION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "FEDERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_reachable() -> None:
    """Skip (laptop) or fail (CI) unless the test PostgreSQL server answers."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server
        message = f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__})"
        if REQUIRE_SERVICES:
            pytest.fail(message + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)


class OnALoop:
    """The asyncio twin driven from threads through one event loop: the conformance suite's
    sync calls become coroutines, concurrent ones interleaving on the loop."""

    def __init__(self, aio: Any) -> None:
        self._aio = aio
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._aio, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self._loop).result(timeout=30)

        return call

    def close(self) -> None:
        closer = getattr(self._aio, "aclose", None)
        if closer is not None:
            asyncio.run_coroutine_threadsafe(closer(), self._loop).result(timeout=30)
        # what the loop's async generators hold (an async engine's pool) is released here
        asyncio.run_coroutine_threadsafe(self._loop.shutdown_asyncgens(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class Flaky(MemorySessionStore):
    """A session store whose generation step fails ``failures`` times (storage down)."""

    failures = 0

    def bump_generation(self, user_id: str) -> int:
        if self.failures:
            self.failures -= 1
            raise StorageError("storage is down")
        return super().bump_generation(user_id)
