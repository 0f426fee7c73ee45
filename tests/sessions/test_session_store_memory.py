"""The memory session store keeps the session-store protocol."""

from __future__ import annotations

import pytest

from federation.storage import MemorySessionStore
from federation.testing.session_conformance import SessionStoreConformance


class TestMemorySessionStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self) -> MemorySessionStore:
        return MemorySessionStore()


def test_the_refresh_rule_is_one_function() -> None:
    from datetime import datetime, timedelta, timezone

    from federation.storage import SessionRecord, refresh_outcome

    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    live = SessionRecord("s", "u", now, now + timedelta(hours=1))
    later = now + timedelta(hours=1)
    assert refresh_outcome(live, later, None, now=now, grace=10) == "rotated"
    assert refresh_outcome(live, later, now - timedelta(seconds=10), now=now, grace=10) == "grace"
    assert refresh_outcome(live, later, now - timedelta(seconds=11), now=now, grace=10) == "reused"
    assert refresh_outcome(live, now, None, now=now, grace=10) == "expired"
    revoked = SessionRecord("s", "u", now, later, revoked_at=now)
    assert refresh_outcome(revoked, now, None, now=now, grace=10) == "revoked"  # revoked before expired
