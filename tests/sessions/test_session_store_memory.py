"""The memory session store keeps the session-store protocol."""

from __future__ import annotations

import dataclasses

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


class _RevokeForgetsUserState(MemorySessionStore):
    """Marks the record revoked, but the user's state (what refuses access tokens) never hears."""

    def revoke_session(self, session_id, *, now):  # type: ignore[no-untyped-def]
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.revoked_at is not None:
                return session
            self._sessions[session_id] = dataclasses.replace(session, revoked_at=now)
            return self._sessions[session_id]


class _RevokedStillListed(MemorySessionStore):
    def sessions_of(self, user_id, *, now):  # type: ignore[no-untyped-def]
        with self._lock:
            row = self._users.get(user_id)
            found = [self._sessions[sid] for sid in (row.sessions if row else ()) if sid in self._sessions]
        return sorted((s for s in found if s.expires_at > now), key=lambda s: (s.issued_at, s.session_id))


@pytest.mark.parametrize(
    ("broken", "rule"),
    [
        (_RevokeForgetsUserState, "in user_state's revoked_sessions"),
        (_RevokedStillListed, "not listed by sessions_of"),
    ],
)
def test_the_kit_catches_a_revoked_session_that_keeps_working(broken: type, rule: str) -> None:
    from federation.testing.session_conformance import check_revoke_session
    from federation.testing.storage_conformance import ConformanceError

    with pytest.raises(ConformanceError, match=rule):
        check_revoke_session(broken())
    check_revoke_session(MemorySessionStore())
