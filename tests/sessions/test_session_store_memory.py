"""The memory session store keeps the session-store protocol."""

from __future__ import annotations

import pytest

from federation.storage import MemorySessionStore
from federation.testing.session_conformance import SessionStoreConformance


class TestMemorySessionStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self) -> MemorySessionStore:
        return MemorySessionStore()
